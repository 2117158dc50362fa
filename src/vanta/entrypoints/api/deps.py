"""What the module-level routers depend on: the container (from the application state)
and the query parameters several routes share."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Depends, Query, Request

from vanta.bootstrap import Container
from vanta.entrypoints.api.models.base import RFC3339
from vanta.entrypoints.api.problems import ApiProblem


def get_container(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


ContainerDep = Annotated[Container, Depends(get_container)]

Limit = Annotated[int, Query(ge=1, le=1000)]
Cursor = Annotated[str | None, Query(min_length=1, description="next_cursor of the page "
                                     "before; only cursors this API issued are valid")]
Since = Annotated[str | None, Query(min_length=1, pattern=RFC3339,
                                    json_schema_extra={"format": "date-time"},
                                    description="an RFC 3339 timestamp with its offset")]


def parse_since(since: object) -> datetime | None:
    if since is None:
        return None
    if not isinstance(since, str):  # a JSON body can carry anything here
        raise ApiProblem(422, "invalid_since", "since must be an ISO 8601 timestamp string",
                         field="since")
    try:
        ts = datetime.fromisoformat(since.replace("Z", "+00:00"))
    except ValueError:
        raise ApiProblem(422, "invalid_since", "since must be an ISO 8601 timestamp",
                         field="since") from None
    if ts.tzinfo is None:
        raise ApiProblem(422, "invalid_since", "since must carry a timezone (e.g. Z)",
                         field="since")
    return ts
