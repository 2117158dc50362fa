"""Two API processes behind Debian's HAProxy (health-checked on ``/healthz``), sharing
PostgreSQL and Redis. A client sends orders, each with its own Idempotency-Key and retried
with the same key on a connection error or a 5xx; one API process is SIGKILLed in the
middle. Every order exists exactly once and every answer names the same order as the
first. Slow: marked ``ha``."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.conftest import require_service
from tests.e2e.test_delivery_faults import Processes, _report
from tests.e2e.test_production_profile import REDIS_URL, VAULT, _prod_env, _setup, _start_api
from tests.integration.test_relay_consumer import _free_port
from tests.pg import temp_database

pytestmark = [pytest.mark.e2e, pytest.mark.ha]


def _haproxy() -> str:
    found = shutil.which("haproxy")
    if found is None:
        msg = "haproxy not found (apt-get install haproxy)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    return found


def _config(port: int, backends: list[int]) -> str:
    servers = "\n".join(f"  server api{i} 127.0.0.1:{p} check inter 200 fall 2 rise 2"
                        for i, p in enumerate(backends))
    return f"""global
  maxconn 512
defaults
  mode http
  timeout connect 1s
  timeout client 30s
  timeout server 30s
  retries 2
  option redispatch
frontend api
  bind 127.0.0.1:{port}
  default_backend apis
backend apis
  balance roundrobin
  option httpchk GET /healthz
{servers}
"""


stalled: list[str] = []  # keys answered 409 (locked by the killed process)


def _post(lb: httpx.Client, body: dict[str, object], key: str) -> tuple[httpx.Response, int]:
    """A client that retries on connection errors and 5xx with the same key."""
    tries = 0
    while True:
        tries += 1
        try:
            r = lb.post("/v1/manager-orders", json=body, headers={"Idempotency-Key": key})
            if r.status_code < 500 and r.status_code != 409:  # 409: the first still runs
                return r, tries
            if r.status_code == 409:
                stalled.append(key)
        except httpx.TransportError:
            pass
        # a key locked by the killed process answers 409 until its lock, no longer renewed,
        # expires (10 s): well inside 80 tries of at least 0.25 s
        assert tries < 80, f"order {key} not accepted within about 20 s"
        time.sleep(0.25)


def test_one_api_killed_behind_haproxy(procs: Processes, tmp_path: Path,
                                       postgres_url: str) -> None:
    haproxy = _haproxy()
    redis_url = require_service("Redis", REDIS_URL)
    started = time.monotonic()
    with temp_database(postgres_url) as db_url:
        env = _prod_env(tmp_path, db_url, "nats://127.0.0.1:1", VANTA_REDIS_URL=redis_url)
        token = _setup(env)
        apis = [_start_api(procs, tmp_path, f"api{i}", env, token) for i in range(2)]
        ports = [int(str(a.base_url).rsplit(":", 1)[1].strip("/")) for a in apis]
        lb_port = _free_port()
        cfg = tmp_path / "haproxy.cfg"
        cfg.write_text(_config(lb_port, ports))
        check = subprocess.run([haproxy, "-c", "-f", str(cfg)], capture_output=True,
                               text=True, timeout=30, check=False)
        assert check.returncode == 0, check.stdout + check.stderr
        procs.start("haproxy", [haproxy, "-db", "-f", str(cfg)], dict(os.environ))
        lb = httpx.Client(base_url=f"http://127.0.0.1:{lb_port}", timeout=10,
                          headers={"Authorization": f"Bearer {token}"})
        deadline = time.monotonic() + 20
        while True:
            try:
                if lb.get("/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, procs.stderr("haproxy")
            time.sleep(0.1)

        n = 60
        answers: dict[str, str] = {}
        tries_of: list[int] = []

        def one(i: int) -> None:
            key = uuid.uuid4().hex
            # the order's own id: should the killed process have committed it without
            # storing its answer, the retry finds it instead of writing a second one
            body = {"id": f"ha-{i}", "vault_id": VAULT, "symbol": "AAPL", "side": "buy",
                    "qty": 1 + i, "ref_price": 100}
            r, tries = _post(lb, body, key)
            if tries > 1 and r.status_code == 200:
                # the killed process committed the order but not its answer: the retry
                # finds the same order (created false) rather than writing a second one
                assert r.json()["created"] is False and r.json()["id"] == f"ha-{i}", r.text
            else:
                assert r.status_code == 201, r.text
            tries_of.append(tries)
            answers[key] = r.json()["mo_id"]
            again, _ = _post(lb, body, key)  # the same key again: the first answer
            assert again.json()["mo_id"] == answers[key]

        killed_at = None
        with ThreadPoolExecutor(4) as pool:  # requests in flight when the process dies
            futures = [pool.submit(one, i) for i in range(n)]
            while len(answers) < n // 3:
                time.sleep(0.01)
            victim = dict(procs.procs)["api0"]
            victim.send_signal(signal.SIGKILL)
            victim.wait(10)
            killed_at = time.monotonic()
            for f in futures:
                f.result()
        retried = sum(tries_of) - len(tries_of)
        assert killed_at is not None
        listed = apis[1].get("/v1/manager-orders", params={"limit": 200}).json()["data"]
        assert sorted(o["mo_id"] for o in listed) == sorted(answers.values())  # once each
        assert len(set(answers.values())) == n
        procs.stop_all()
        _report("haproxy_api_killed", {"orders": n, "client_retries": retried,
                                       "keys_locked_by_the_killed_process": len(set(stalled)),
                                       "total_s": round(time.monotonic() - started, 1)})
