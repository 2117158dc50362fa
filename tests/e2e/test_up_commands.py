"""What ``vanta up`` prints under "Try:" works when pasted into a shell."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.e2e.processes import Processes
from vanta.entrypoints.cli.try_commands import try_commands, vanta_command

VANTA = Path(sys.executable).with_name("vanta")


def test_printed_commands_call_vanta_by_a_path_and_carry_an_idempotency_key(
        tmp_path: Path) -> None:
    exe = shlex.split(vanta_command(str(VANTA)))[0] if VANTA.exists() else None
    if exe is not None:
        assert Path(exe).is_absolute() and Path(exe).is_file()
    fallback = shlex.split(vanta_command(str(tmp_path / "not-there")))
    assert Path(fallback[0]).is_file()  # the installed script or the interpreter
    lines = try_commands("http://127.0.0.1:9", tmp_path / "d i r", "/opt/x/vanta")
    assert lines[0] == (f"export VANTA_TOKEN=$(/opt/x/vanta token --data-dir "
                        f"{shlex.quote(str((tmp_path / 'd i r').resolve()))})")
    assert "Idempotency-Key: " in lines[2] and "/v1/manager-orders" in lines[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(api: str, proc: subprocess.Popen[bytes], out: Path) -> list[str]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"vanta up exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{api}/healthz", timeout=1):
                pass
        except OSError:
            time.sleep(0.2)
            continue
        text = out.read_text()
        return [ln.strip() for ln in text.split("Try:", 1)[1].splitlines() if ln.strip()]
    raise TimeoutError("vanta up did not answer")


@pytest.mark.skipif(not VANTA.exists(), reason="the vanta console script is not installed")
@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_pasting_the_printed_commands_works(tmp_path: Path, procs: Processes) -> None:
    port, rport = _free_port(), _free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "400"}
    env.pop("VANTA_DATA_DIR", None)
    proc = procs.start("up", [str(VANTA), "up", "--port", str(port), "--receiver-port",
                              str(rport), "--data-dir", str(tmp_path / "data")], env)
    lines = _wait_ready(f"http://127.0.0.1:{port}", proc, procs.logs / "up.out")
    assert len(lines) == 3
    # pasted from another directory, where no .venv/bin is at hand
    script = f"set -e\n{lines[0]}\n{lines[1]}\necho\n{lines[2]}\n"
    r = subprocess.run(["bash", "-c", script], cwd="/", capture_output=True, text=True,
                       timeout=60, env={"PATH": "/usr/bin:/bin"}, check=False)
    assert r.returncode == 0, r.stderr
    vaults, order = r.stdout.strip().splitlines()
    assert "V_CORE" in vaults
    body = json.loads(order)
    assert body.get("mo_id") or body.get("id"), body


def _call(method: str, url: str, token: str, body: object, key: str) -> dict[str, object]:
    req = urllib.request.Request(url, method=method, data=json.dumps(body).encode(), headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/json",
        "Idempotency-Key": key})
    with urllib.request.urlopen(req, timeout=10) as r:
        return dict(json.loads(r.read()))


@pytest.mark.skipif(not VANTA.exists(), reason="the vanta console script is not installed")
def test_the_readme_example_follower_receives_orders_in_the_demo(
        tmp_path: Path, procs: Processes) -> None:
    port, rport = _free_port(), _free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("VANTA_DATA_DIR", None)
    proc = procs.start("up", [str(VANTA), "up", "--port", str(port), "--receiver-port",
                              str(rport), "--data-dir", str(tmp_path / "data")], env)
    api = f"http://127.0.0.1:{port}"
    _wait_ready(api, proc, procs.logs / "up.out")
    token = (procs.logs / "up.out").read_text().split("all scopes):", 1)[1].split()[0]
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    url = readme.split('"webhook":{"url":"', 1)[1].split('"', 1)[0]
    assert url == "http://127.0.0.1:8001/hooks/ana"  # the receiver `vanta up` starts
    url = url.replace(":8001/", f":{rport}/")
    f = _call("POST", f"{api}/v1/vaults/V_CORE/followers", token,
              {"label": "Ana", "scale": "0.25", "webhook": {"url": url}}, "ana-1")
    secret = str(f["webhook_secret"])
    put = urllib.request.Request(f"http://127.0.0.1:{rport}/_admin/secrets/ana",
                                 method="PUT", data=secret.encode())
    urllib.request.urlopen(put, timeout=10).close()
    _call("POST", f"{api}/v1/manager-orders", token,
          {"vault_id": "V_CORE", "symbol": "AAPL", "side": "buy", "qty": 40,
           "ref_price": 190}, "order-1")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"http://127.0.0.1:{rport}/_admin/deliveries") as r:
            got = [d for d in json.loads(r.read())["deliveries"] if d["key"] == "ana"]
        if got:
            break
        time.sleep(0.2)
    assert got and got[0]["verified"] is True, got
