"""The browser tier: Playwright for Python driving Debian's chromium against one real
``vanta up`` process (uvicorn, demo data, the signature-checking demo receiver) for the
whole session. Without chromium, Playwright or axe-core the tests skip with the reason; with
``CI=true`` they fail instead. Screenshots go to ``test-output/browser/`` (not in git)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.processes import Processes
from tests.http_helpers import UNLIMITED_ENV
from vanta.application.seed import create_tenant, create_vault
from vanta.application.tenancy import grant_plan
from vanta.bootstrap import build
from vanta.config import Settings

CHROMIUM = Path(os.environ.get("VANTA_TEST_CHROMIUM", "/usr/bin/chromium"))
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
HERE = Path(__file__).parent
AXE = HERE / "node_modules" / "axe-core" / "axe.min.js"
ROOT = HERE.parent.parent
SHOTS = ROOT / "test-output" / "browser"
VANTA = Path(sys.executable).with_name("vanta")
CORE_TENANT, CORE_VAULT = "tnt_core", "V_LITE"


def unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"browser tests cannot run: {reason} (CI=true: they are required)")
    pytest.skip(f"browser tests cannot run: {reason}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Platform:
    """The running ``vanta up``: its URLs, what it printed, and an API client."""

    base: str
    receiver: str
    sign_in: str  # the one-click link it printed
    token: str  # the dev token it printed (owner of the demo tenant)
    data_dir: Path

    def api(self, method: str, path: str, body: Any = None,
            token: str | None = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method, headers={
            "Authorization": f"Bearer {token or self.token}",
            "Content-Type": "application/json", "Idempotency-Key": str(uuid.uuid4())})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def order(self, symbol: str = "AAPL", qty: str = "10", **extra: Any) -> dict[str, Any]:
        status, body = self.api("POST", "/v1/manager-orders", {
            "vault_id": "V_CORE", "symbol": symbol, "side": "buy", "qty": qty,
            "ref_price": "100", **extra})
        assert status == 201, body
        # the POST answer links the children instead of listing them
        status, kids = self.api("GET", body["links"]["children"])
        assert status == 200, kids
        return {**body, "children": kids["data"]}

    def give_receiver_secret(self, key: str, secret: str) -> None:
        req = urllib.request.Request(f"{self.receiver}/_admin/secrets/{key}",
                                     data=secret.encode(), method="PUT")
        with urllib.request.urlopen(req, timeout=5):
            pass


async def _core_tenant(data: Path) -> None:
    """A second tenant on the Core plan, written to the running platform's database."""
    c = build(Settings(data_dir=data, profile="test"))
    await create_tenant(c.uow(), tenant_id=CORE_TENANT, name="Lite Capital")
    await grant_plan(c.uow(), tenant_id=CORE_TENANT, plan_id="core", actor="test")
    await create_vault(c.uow(), tenant_id=CORE_TENANT, vault_id=CORE_VAULT, label="Lite")
    await c.close()


def _wait_printed(proc: subprocess.Popen[bytes], out: Path, base: str) -> str:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"vanta up exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=1):
                return out.read_text()
        except OSError:
            time.sleep(0.2)
    raise TimeoutError("vanta up did not answer")


@pytest.fixture(scope="session")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    if not VANTA.exists():
        unavailable("the vanta console script is not installed")
    root = tmp_path_factory.mktemp("browser")
    data = root / "data"
    env = {**os.environ, **UNLIMITED_ENV, "VANTA_DATA_DIR": str(data),
           # two quick retries, so an unreachable follower is dead-lettered within seconds
           "VANTA_RETRY_SCHEDULE_SECONDS": "[2.0, 2.0]", "VANTA_RETRY_JITTER_FRACTION": "0",
           "VANTA_WEBHOOK_TIMEOUT_SECONDS": "2", "VANTA_DISPATCHER_LEASE_SECONDS": "10"}
    port, rport = free_port(), free_port()
    procs = Processes(root)
    proc = procs.start("up", [str(VANTA), "up", "--port", str(port), "--receiver-port",
                              str(rport), "--data-dir", str(data)], env)
    try:
        base = f"http://127.0.0.1:{port}"
        printed = _wait_printed(proc, root / "up.out", base)
        link = re.search(r"^Sign in\s+(\S+)", printed, re.M)
        token = re.search(r"Dev token.*\n(\S+)", printed)
        assert f"App      {base}/app" in printed and link and token, printed
        # to be refused what the Core plan lacks; in a thread of its own, since Playwright's
        # sync API may already run an event loop in this one
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, _core_tenant(data)).result(timeout=60)
        yield Platform(base, f"http://127.0.0.1:{rport}", link.group(1), token.group(1),
                       data)
    finally:
        procs.stop_all()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        unavailable(f"{CHROMIUM} not found (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("the playwright package is not installed (pip install -e '.[dev]')")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="session")
def axe_source() -> str:
    if not AXE.exists():
        npm = shutil.which("npm")
        if npm is not None:
            subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error",
                            "--fetch-retries=2", "--fetch-retry-mintimeout=1000",
                            "--fetch-retry-maxtimeout=5000"], cwd=HERE, capture_output=True,
                           timeout=300, check=False)
        if not AXE.exists():
            unavailable(f"axe-core is not installed in {HERE} (npm ci there)")
    return AXE.read_text()


def new_page(browser: Any, *, width: int = 1280, height: int = 900) -> Any:
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.set_default_timeout(15_000)
    # every message the CSP would log about a refused script or style fails the test
    page.csp_errors = []
    page.on("console", lambda m: page.csp_errors.append(m.text)
            if "Content Security Policy" in m.text else None)
    return page


def sign_in(page: Any, platform: Platform, role: str = "owner",
            tenant: str | None = None) -> None:
    link = platform.sign_in.replace("as_role=owner", f"as_role={role}")
    if tenant is not None:
        link += f"&tenant={tenant}"
    page.goto(link)
    page.wait_for_selector("header .who")


def shot(page: Any, name: str, *, full_page: bool = True) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=full_page)
