"""Progress bars for the commands that loop over many items."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

Report = Callable[[int, int], None]  # (done, total)


@contextmanager
def progress_bar(console: Console, description: str) -> Iterator[Report]:
    """Yields ``report(done, total)``. Transient, so tables printed afterwards stay clean; on
    a console that is not a terminal Rich draws nothing, so piped output is unchanged."""
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), TimeRemainingColumn(), console=console,
                  transient=True) as bar:
        task = bar.add_task(description, total=None)

        def report(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield report
