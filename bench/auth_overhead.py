"""Authenticated `GET /v1/vaults` against a bare FastAPI endpoint, same machine, same run.

    .venv/bin/python bench/auth_overhead.py [--seconds 5] [--concurrency 32] [--rounds 3]

Both servers run as separate uvicorn processes on 127.0.0.1 (one worker each) with the same
uvicorn settings (uvloop, HTTP "auto", log level warning, no access log); one
aiohttp client drives them in alternating rounds. The Vanta server runs the embedded profile
with its whole middleware stack (request log + audit, rate limit, idempotency) and a real
RS256 token; rate limits are lifted so they do not cap the measurement. Reports requests/s
and latency percentiles per server (medians over rounds) and the throughput ratio; JSON goes
to bench/results/auth_overhead.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

BARE_APP = '''
from fastapi import FastAPI
app = FastAPI()
@app.get("/v1/vaults")
async def vaults():
    return {"data": [{"vault_id": "V_CORE", "label": "Core Growth"}]}
'''


def _wait_port(path: Path, proc: subprocess.Popen[bytes], timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            return int(path.read_text())
        if proc.poll() is not None:
            raise RuntimeError("server exited")
        time.sleep(0.05)
    raise TimeoutError(path)


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _load(url: str, headers: dict[str, str], seconds: float, conc: int
                ) -> tuple[float, list[float]]:
    lat: list[float] = []
    stop = time.perf_counter() + seconds
    errors = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=conc)) as s:
        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < stop:
                t = time.perf_counter()
                async with s.get(url, headers=headers) as r:
                    await r.read()
                    if r.status != 200:
                        errors += 1
                lat.append(time.perf_counter() - t)
        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(conc)))
        elapsed = time.perf_counter() - t0
    if errors:
        raise RuntimeError(f"{errors} non-200 answers from {url}")
    return len(lat) / elapsed, lat


def _pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))] * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="vanta-bench-"))
    env = {**os.environ, "VANTA_DATA_DIR": str(tmp / "data"),
           "VANTA_RATE_LIMIT_PER_MINUTE": "100000000", "VANTA_RATE_LIMIT_BURST": "100000000"}
    vanta = [sys.executable, "-m", "vanta.entrypoints.cli.main"]
    subprocess.run([*vanta, "tenant-create", "tnt_demo"], env=env, check=True,
                   capture_output=True)
    subprocess.run([*vanta, "vault-create", "V_CORE", "--tenant", "tnt_demo"], env=env,
                   check=True, capture_output=True)
    token = subprocess.run([*vanta, "token", "--tenant", "tnt_demo"], env=env, check=True,
                           capture_output=True, text=True).stdout.strip()
    (tmp / "bare.py").write_text(BARE_APP)
    bare_port = _free_port()
    procs = [
        subprocess.Popen([*vanta, "serve", "--port", "0", "--port-file", str(tmp / "p"),
                          "--no-dispatcher"], env=env, stderr=subprocess.DEVNULL),
        # Same uvicorn settings as `vanta serve`: uvloop (its default event loop), HTTP
        # "auto", log level warning, no access log.
        subprocess.Popen([sys.executable, "-m", "uvicorn", "bare:app", "--port",
                          str(bare_port), "--loop", "uvloop", "--http", "auto",
                          "--log-level", "warning", "--no-access-log"],
                         cwd=tmp, env=env),
    ]
    try:
        vport = _wait_port(tmp / "p", procs[0])
        time.sleep(1.0)
        targets = {
            "vanta": (f"http://127.0.0.1:{vport}/v1/vaults",
                      {"Authorization": f"Bearer {token}"}),
            "bare": (f"http://127.0.0.1:{bare_port}/v1/vaults", {}),
        }
        rounds: dict[str, list[tuple[float, float, float]]] = {k: [] for k in targets}
        for url, h in targets.values():  # warm up
            asyncio.run(_load(url, h, 1.0, args.concurrency))
        for _ in range(args.rounds):
            for name, (url, h) in targets.items():
                rps, lat = asyncio.run(_load(url, h, args.seconds, args.concurrency))
                rounds[name].append((rps, _pct(lat, 50), _pct(lat, 99)))
    finally:
        for p in procs:
            p.terminate()
            p.wait(10)
    out = {}
    for name, rs in rounds.items():
        out[name] = {"rps": round(statistics.median(r[0] for r in rs), 1),
                     "p50_ms": round(statistics.median(r[1] for r in rs), 2),
                     "p99_ms": round(statistics.median(r[2] for r in rs), 2)}
    out["ratio"] = round(out["vanta"]["rps"] / out["bare"]["rps"], 3)
    out["config"] = vars(args)
    print(f"{'server':<8} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
    for name in ("vanta", "bare"):
        r = out[name]
        print(f"{name:<8} {r['rps']:>9} {r['p50_ms']:>8} {r['p99_ms']:>8}")
    print(f"authenticated / bare throughput: {out['ratio']:.2f}")
    res = Path(__file__).with_name("results")
    res.mkdir(exist_ok=True)
    (res / "auth_overhead.json").write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
