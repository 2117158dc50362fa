"""Which signing keys a follower's webhook is signed with, read from its typed record."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.records import T0, follower_record
from vanta.application.dispatch_steps import signing_refs


def test_the_current_key_and_keys_still_in_their_overlap_sign() -> None:
    rec = follower_record(hmac_key_ref="k3", webhook_keys=[
        {"ref": "k1", "not_after": (T0 - timedelta(seconds=1)).isoformat()},  # lapsed
        {"ref": "k2", "not_after": (T0 + timedelta(hours=1)).isoformat()},
        {"ref": "k0", "not_after": None}])
    assert signing_refs(rec, T0) == ["k3", "k2", "k0"]


def test_a_follower_without_a_signing_key_is_never_sent_unsigned() -> None:
    with pytest.raises(ValueError, match="no signing key"):
        signing_refs(follower_record(hmac_key_ref=None), T0)
