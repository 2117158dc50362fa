import json
from datetime import UTC, datetime, timedelta

import pytest

from vanta.domain.entitlements import (
    FLAG_FEATURES,
    PLANS,
    DecisionContext,
    Entitlements,
    Feature,
    OverlayKind,
    PlanId,
    Reason,
    can_add_seat,
    can_add_vault,
    can_apply_overlay,
    can_use_mode,
    decide,
    entitlements_for,
    get_plan,
)
from vanta.domain.errors import ValidationFailed
from vanta.domain.followers import FollowerMode
from vanta.domain.subscriptions import Access, SubscriptionStatus, effective_status

CORE = entitlements_for(PlanId.CORE)
PRO = entitlements_for(PlanId.PRO)
INST = entitlements_for(PlanId.INSTITUTIONAL)
ALL = {"core": CORE, "pro": PRO, "institutional": INST}

# feature -> plans that have it
EXPECTED_FLAGS = {
    Feature.FLIP_MODE: {"pro", "institutional"},
    Feature.PERSONA_BOOSTS: {"pro", "institutional"},
    Feature.REPLAY_DASHBOARDS: {"pro", "institutional"},
    Feature.AUDIT_READ: {"core", "pro", "institutional"},
    Feature.CUSTOM_VAULT_CAPS: {"institutional"},
    Feature.DEDICATED_SIGNING_KEYS: {"institutional"},
    Feature.API_PULL_FEED: {"institutional"},
    Feature.PRIORITY_LATENCY: {"institutional"},
}


def test_three_plans_defined_as_data() -> None:
    assert set(PLANS) == set(PlanId)
    for plan_id, plan in PLANS.items():
        assert plan.plan_id is plan_id
        assert get_plan(plan_id.value) is plan
    assert set(EXPECTED_FLAGS) == set(FLAG_FEATURES)


def test_limits_per_plan() -> None:
    assert (CORE.max_vaults, CORE.seats) == (1, 1)
    assert (PRO.max_vaults, PRO.seats) == (10, 3)
    assert (INST.max_vaults, INST.seats) == (None, None)  # unlimited


def test_follower_modes_per_plan() -> None:
    assert CORE.follower_modes == {FollowerMode.PROPORTIONAL, FollowerMode.SHADOW}
    assert PRO.follower_modes == set(FollowerMode)
    assert INST.follower_modes == set(FollowerMode)


@pytest.mark.parametrize("feature", list(EXPECTED_FLAGS))
@pytest.mark.parametrize("plan", ["core", "pro", "institutional"])
def test_flag_decisions_per_plan(plan: str, feature: Feature) -> None:
    d = decide(ALL[plan], feature)
    if plan in EXPECTED_FLAGS[feature]:
        assert d.allowed and d.reason is Reason.OK and d
    else:
        assert not d.allowed and d.reason == "plan_lacks_feature" and not d


def test_vault_limits() -> None:
    assert can_add_vault(CORE, 0).allowed
    d = can_add_vault(CORE, 1)
    assert (d.allowed, d.reason, d.limit) == (False, Reason.VAULT_LIMIT_REACHED, 1)
    assert can_add_vault(PRO, 9).allowed
    assert can_add_vault(PRO, 10).reason == "vault_limit_reached"
    assert can_add_vault(PRO, 25).reason == "vault_limit_reached"  # already over (downgrade)
    assert can_add_vault(INST, 1_000_000).allowed


def test_seat_limits() -> None:
    assert can_add_seat(CORE, 0).allowed
    assert can_add_seat(CORE, 1).reason == "seat_limit_reached"
    assert can_add_seat(PRO, 2).allowed
    d = can_add_seat(PRO, 3)
    assert (d.allowed, d.reason, d.limit) == (False, Reason.SEAT_LIMIT_REACHED, 3)
    assert can_add_seat(INST, 500).allowed


def test_modes() -> None:
    assert can_use_mode(CORE, FollowerMode.PROPORTIONAL).allowed
    assert can_use_mode(CORE, "shadow").allowed
    d = can_use_mode(CORE, FollowerMode.CAPPED)
    assert (d.allowed, d.reason) == (False, Reason.MODE_NOT_IN_PLAN)
    for ent in (PRO, INST):
        assert all(can_use_mode(ent, m).allowed for m in FollowerMode)
    assert can_use_mode(PRO, "yolo").reason == "unknown_feature"


def test_overlays() -> None:
    assert can_apply_overlay(CORE, OverlayKind.FLIP).reason == "plan_lacks_feature"
    assert can_apply_overlay(CORE, "persona_boost").reason == "plan_lacks_feature"
    for ent in (PRO, INST):
        assert can_apply_overlay(ent, "flip").allowed
        assert can_apply_overlay(ent, OverlayKind.PERSONA_BOOST).allowed
    assert can_apply_overlay(INST, "chaos").reason == "unknown_feature"


def test_unknown_feature_is_refused_not_allowed() -> None:
    d = decide(INST, "teleport")
    assert (d.allowed, d.reason) == (False, Reason.UNKNOWN_FEATURE)
    assert decide(INST, "flip_mode").allowed  # plain strings work


def test_missing_context_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        decide(PRO, Feature.VAULTS)
    with pytest.raises(ValueError):
        decide(PRO, Feature.SEATS, context=DecisionContext(current_count=-1))
    with pytest.raises(ValueError):
        decide(PRO, Feature.FOLLOWER_MODE)
    with pytest.raises(ValueError):  # even when the subscription is inactive
        decide(PRO.with_access(Access.LAPSED), Feature.VAULTS)


@pytest.mark.parametrize("plan", ["core", "pro", "institutional"])
def test_lapsed_subscription_has_no_paid_features(plan: str) -> None:
    lapsed = ALL[plan].with_access(Access.LAPSED)
    assert not lapsed.active
    assert lapsed.max_vaults == ALL[plan].max_vaults  # the purchase is kept, just inactive
    inactive = Reason.SUBSCRIPTION_INACTIVE
    for f in FLAG_FEATURES:
        if f is not Feature.AUDIT_READ:
            assert decide(lapsed, f).reason is inactive
    assert decide(lapsed, Feature.AUDIT_READ).allowed  # audit history stays readable
    assert can_add_vault(lapsed, 0).reason is inactive
    assert can_add_seat(lapsed, 0).reason is inactive
    assert all(can_use_mode(lapsed, m).reason is inactive for m in FollowerMode)
    assert all(can_apply_overlay(lapsed, k).reason is inactive for k in OverlayKind)
    # paying again restores the same grant
    assert lapsed.with_access(Access.ENTITLED) == ALL[plan]


def test_grace_keeps_features() -> None:
    assert PRO.with_access(Access.GRACE) is PRO
    assert can_apply_overlay(PRO.with_access(Access.GRACE), "flip").allowed


def test_subscription_status_drives_entitlements() -> None:
    since = datetime(2025, 1, 1, tzinfo=UTC)
    def ent_at(days: int) -> Entitlements:
        access = effective_status(SubscriptionStatus.PAST_DUE, since,
                                  since + timedelta(days=days))
        return PRO.with_access(access)
    assert can_apply_overlay(ent_at(2), "flip").allowed
    assert can_apply_overlay(ent_at(3), "flip").reason == "subscription_inactive"


def test_plan_entitlements_can_start_lapsed() -> None:
    ent = get_plan("pro").entitlements(Access.LAPSED)
    assert not ent.active
    assert entitlements_for("pro", Access.GRACE).active


def test_no_subscription() -> None:
    none = Entitlements.none()
    assert decide(none, Feature.AUDIT_READ).allowed
    assert can_add_vault(none, 0).reason == "subscription_inactive"


def test_unknown_plan() -> None:
    for bad in ("enterprise", "", None, 1):
        with pytest.raises(ValidationFailed) as e:
            entitlements_for(bad)
        assert e.value.code == "unknown_plan"


@pytest.mark.parametrize("ent", [CORE, PRO, INST, PRO.with_access(Access.LAPSED),
                                 Entitlements.none()])
def test_json_round_trip(ent: Entitlements) -> None:
    doc = json.loads(json.dumps(ent.to_json()))
    assert Entitlements.from_json(doc) == ent


def test_json_shape() -> None:
    doc = PRO.to_json()
    assert doc["schema"] == 1
    assert doc["plan"] == "pro"
    assert doc["limits"] == {"vaults": 10, "seats": 3}
    assert doc["follower_modes"] == ["capped", "proportional", "shadow"]
    assert doc["features"]["flip_mode"] is True
    assert doc["features"]["api_pull_feed"] is False
    assert INST.to_json()["limits"] == {"vaults": None, "seats": None}


def test_stored_entitlements_survive_plan_changes() -> None:
    # a grandfathered pro subscription bought when pro had 5 vaults and a retired feature
    stored = {
        "schema": 1, "plan": "pro_2024", "active": True,
        "limits": {"vaults": 5, "seats": 2},
        "follower_modes": ["proportional", "capped", "martingale"],
        "features": {"flip_mode": True, "replay_dashboards": True, "audit_read": True,
                     "legacy_widget": True},
    }
    ent = Entitlements.from_json(stored)
    assert ent.plan_id == "pro_2024"
    assert ent.max_vaults == 5
    assert can_add_vault(ent, 4).allowed
    assert can_add_vault(ent, 5).reason == "vault_limit_reached"
    assert ent.follower_modes == {FollowerMode.PROPORTIONAL, FollowerMode.CAPPED}
    assert can_use_mode(ent, "shadow").reason == "mode_not_in_plan"
    assert decide(ent, Feature.FLIP_MODE).allowed
    # features missing from the stored document are off
    assert decide(ent, Feature.PERSONA_BOOSTS).reason == "plan_lacks_feature"


def test_missing_limits_fail_closed() -> None:
    ent = Entitlements.from_json({"plan": "core", "active": True})
    assert can_add_vault(ent, 0).reason == "vault_limit_reached"
    assert can_add_seat(ent, 0).reason == "seat_limit_reached"
    assert not ent.follower_modes
    assert not any(ent.flag(f) for f in FLAG_FEATURES)


@pytest.mark.parametrize("doc", [
    None, [], "pro",
    {"active": True},
    {"plan": "", "active": True},
    {"plan": "pro", "active": "yes"},
    {"plan": "pro", "limits": {"vaults": -1}},
    {"plan": "pro", "limits": {"vaults": 1.5}},
    {"plan": "pro", "limits": {"vaults": True}},
    {"plan": "pro", "limits": []},
    {"plan": "pro", "follower_modes": "capped"},
    {"plan": "pro", "features": {"flip_mode": 1}},
    {"plan": "pro", "features": ["flip_mode"]},
])
def test_malformed_documents_are_refused(doc: object) -> None:
    with pytest.raises(ValidationFailed) as e:
        Entitlements.from_json(doc)
    assert e.value.code == "invalid_entitlements"


def test_flag_rejects_counted_features() -> None:
    with pytest.raises(ValueError):
        PRO.flag(Feature.VAULTS)
