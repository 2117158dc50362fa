"""Two built-in issuers with keys of their own, for the token tests."""

from __future__ import annotations

import pytest

from tests.unit.dev_issuers import AUD, ISS
from vanta.adapters.identity.dev_issuer import DevIssuer


@pytest.fixture(scope="module")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> DevIssuer:
    return DevIssuer(tmp_path_factory.mktemp("keys") / "dev-issuer.pem", issuer=ISS, audience=AUD)


@pytest.fixture(scope="module")
def other_issuer(tmp_path_factory: pytest.TempPathFactory) -> DevIssuer:
    return DevIssuer(tmp_path_factory.mktemp("other") / "k.pem", issuer=ISS, audience=AUD)
