"""The receiver-side helper lives at vanta.receiving; the old vanta.webhooks path, which the
README documented, still imports the same objects and says it was renamed."""

from __future__ import annotations

import importlib
import sys

import pytest

import vanta.receiving


def test_the_old_import_path_reexports_the_same_objects_with_a_warning() -> None:
    sys.modules.pop("vanta.webhooks", None)
    with pytest.warns(DeprecationWarning, match="vanta.receiving"):
        old = importlib.import_module("vanta.webhooks")
    for name in vanta.receiving.__all__:
        assert getattr(old, name) is getattr(vanta.receiving, name)
    assert sorted(old.__all__) == sorted(vanta.receiving.__all__)
