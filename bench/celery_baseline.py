"""The fan-out a team would otherwise build: Celery, a Redis broker, one task per child.

Each child is one task; the task signs the body (both schemes, the same helper Vanta uses,
so the same receiver verifies it) and sends it with ``requests.post`` (a new connection per
request, as ``requests.post`` does), retrying network errors and 5xx with backoff. No result
backend. ``bench/fanout.py`` enqueues the tasks in its own process and starts the worker:

    BENCH_CELERY_BROKER=redis://127.0.0.1:6379/13 \\
      .venv/bin/python -m celery -A celery_baseline worker --pool threads --concurrency 64

(run from ``bench/``). Needs ``celery`` and ``requests`` (the ``bench`` extra).
"""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Iterable

import requests
from celery import Celery

from vanta.domain.webhook_signing import signature_headers

BROKER = os.environ.get("BENCH_CELERY_BROKER", "redis://127.0.0.1:6379/13")

app = Celery("vanta_bench_baseline", broker=BROKER)
app.conf.update(
    task_ignore_result=True,
    task_serializer="json",
    accept_content=["json"],
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
    task_default_queue="fanout_baseline",
)


def _key(whsec: str) -> bytes:
    encoded = whsec.removeprefix("whsec_")
    return base64.b64decode(encoded + "=" * (-len(encoded) % 4))


@app.task(name="fanout.deliver", bind=True, autoretry_for=(requests.RequestException,),
          retry_backoff=1, retry_backoff_max=60, max_retries=4)
def deliver(self: object, url: str, body: str, whsec: str, webhook_id: str) -> int:
    raw = body.encode()
    headers = signature_headers([_key(whsec)], webhook_id, int(time.time()), raw)
    r = requests.post(url, data=raw, headers=headers, timeout=5, allow_redirects=False)
    if r.status_code >= 500 or r.status_code in (408, 425, 429):
        r.raise_for_status()
    return r.status_code


def enqueue(items: Iterable[tuple[str, str, str, str]]) -> int:
    """Queue one task per ``(url, body, whsec, webhook_id)``; returns how many."""
    n = 0
    with app.producer_or_acquire() as producer:
        for url, body, whsec, wid in items:
            deliver.apply_async((url, body, whsec, wid), producer=producer)
            n += 1
    return n
