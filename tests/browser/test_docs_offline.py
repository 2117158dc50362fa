"""/docs and /redoc render with every request outside this server refused (and their
Content-Security-Policy keeps the pages from even trying one)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from tests.browser.conftest import Platform, new_page, shot


def test_api_reference_renders_with_the_network_blocked(browser: Any,
                                                        platform: Platform) -> None:
    page = new_page(browser)
    refused: list[str] = []

    def only_local(route: Any) -> None:
        if urlsplit(route.request.url).hostname in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort()

    page.context.route("**/*", only_local)
    page.goto(f"{platform.base}/docs")
    # Swagger UI parses the whole OpenAPI document first: slow on a busy machine
    page.wait_for_selector(".swagger-ui .info .title", timeout=60_000)
    assert "Vanta Platform API" in page.text_content(".swagger-ui .info .title")
    page.wait_for_selector("[data-path='/v1/manager-orders']")
    shot(page, "08-docs-offline")
    page.goto(f"{platform.base}/redoc")
    page.wait_for_selector("h1:has-text('Vanta Platform API')", timeout=60_000)
    assert refused == []  # nothing even tried to leave
    page.context.close()
