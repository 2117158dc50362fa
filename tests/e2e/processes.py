"""Real processes for end-to-end tests: start them, wait for their port files, stop them."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path


class Processes:
    """Every process a test starts; all of them are stopped when the test ends."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        out = (self.logs / f"{name}.out").open("wb")
        err = (self.logs / f"{name}.err").open("wb")
        try:
            proc = subprocess.Popen(args, env=env, stdout=out, stderr=err)
        finally:
            out.close()
            err.close()
        self.procs.append((name, proc))
        return proc

    def stderr(self, name: str) -> str:
        return (self.logs / f"{name}.err").read_text(errors="replace")

    def stop_all(self) -> None:
        for _, proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for _, proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


def wait_for_file(path: Path, proc: subprocess.Popen[bytes], timeout: float = 30) -> str:
    """The content of a port file the process writes once it listens."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            return path.read_text()
        if proc.poll() is not None:
            raise RuntimeError(f"process exited early with {proc.returncode}")
        time.sleep(0.05)
    raise TimeoutError(f"{path} did not appear")
