"""Plans, the entitlements they grant, and the one place that decides whether a call may proceed.

Three plans are defined as data in ``PLANS``:

| feature                  | core                 | pro                 | institutional |
|--------------------------|----------------------|---------------------|---------------|
| vaults                   | 1                    | 10                  | unlimited     |
| seats                    | 1                    | 3                   | unlimited     |
| follower modes           | proportional, shadow | + capped            | + capped      |
| flip_mode                | -                    | yes                 | yes           |
| persona_boosts           | -                    | yes                 | yes           |
| replay_dashboards        | -                    | yes                 | yes           |
| audit_read (read-only)   | yes                  | yes                 | yes           |
| custom_vault_caps        | -                    | -                   | yes           |
| dedicated_signing_keys   | -                    | -                   | yes           |
| api_pull_feed            | -                    | -                   | yes           |
| priority_latency         | -                    | -                   | yes           |

A subscription stores its *resolved* ``Entitlements`` as JSON (``to_json``/``from_json``), so
what a customer bought survives later edits to ``PLANS``; reading a stored document never
consults ``PLANS``. Unknown keys are ignored and missing ones fail closed (feature off, limit 0).

``decide(entitlements, feature, context=...)`` is the single decision function; the
``can_*`` helpers are thin wrappers. Every ``Decision`` carries a stable ``Reason`` code:
``ok``, ``plan_lacks_feature``, ``mode_not_in_plan``, ``vault_limit_reached``,
``seat_limit_reached``, ``subscription_inactive``, ``unknown_feature``.

Lapse: ``Entitlements.with_access(Access.LAPSED)`` keeps the purchased values but marks them
inactive, and ``decide`` then refuses every paid feature with ``subscription_inactive``;
read-only audit access stays. A lapse only refuses *new* actions (adding a vault, a seat, a
follower mode, an overlay, opening the pull feed). It never closes, reduces or exits a
follower's positions, and callers must not turn a refusal into a liquidation: exits keep being
mirrored, and a running flip overlay ends by its own TTL.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from vanta.domain.errors import ValidationFailed
from vanta.domain.followers import FollowerMode
from vanta.domain.subscriptions import Access

ENTITLEMENTS_SCHEMA = 1


class PlanId(StrEnum):
    CORE = "core"
    PRO = "pro"
    INSTITUTIONAL = "institutional"


class Feature(StrEnum):
    VAULTS = "vaults"  # count-limited: context.current_count
    SEATS = "seats"  # count-limited: context.current_count
    FOLLOWER_MODE = "follower_mode"  # context.mode
    FLIP_MODE = "flip_mode"
    PERSONA_BOOSTS = "persona_boosts"
    REPLAY_DASHBOARDS = "replay_dashboards"
    AUDIT_READ = "audit_read"
    CUSTOM_VAULT_CAPS = "custom_vault_caps"
    DEDICATED_SIGNING_KEYS = "dedicated_signing_keys"
    API_PULL_FEED = "api_pull_feed"
    PRIORITY_LATENCY = "priority_latency"


# On/off features; each is a bool field of the same name on Plan and Entitlements.
FLAG_FEATURES: tuple[Feature, ...] = (
    Feature.FLIP_MODE, Feature.PERSONA_BOOSTS, Feature.REPLAY_DASHBOARDS, Feature.AUDIT_READ,
    Feature.CUSTOM_VAULT_CAPS, Feature.DEDICATED_SIGNING_KEYS, Feature.API_PULL_FEED,
    Feature.PRIORITY_LATENCY,
)


class Reason(StrEnum):
    OK = "ok"
    PLAN_LACKS_FEATURE = "plan_lacks_feature"
    MODE_NOT_IN_PLAN = "mode_not_in_plan"
    VAULT_LIMIT_REACHED = "vault_limit_reached"
    SEAT_LIMIT_REACHED = "seat_limit_reached"
    SUBSCRIPTION_INACTIVE = "subscription_inactive"
    UNKNOWN_FEATURE = "unknown_feature"


class OverlayKind(StrEnum):
    FLIP = "flip"
    PERSONA_BOOST = "persona_boost"


_OVERLAY_FEATURE = {OverlayKind.FLIP: Feature.FLIP_MODE,
                    OverlayKind.PERSONA_BOOST: Feature.PERSONA_BOOSTS}


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    reason: Reason
    limit: int | None = None  # the limit that applied, for count-limited features

    def __bool__(self) -> bool:
        return self.allowed


@dataclass(frozen=True, slots=True)
class DecisionContext:
    """What a decision needs besides the entitlements; which field depends on the feature."""

    current_count: int | None = None  # vaults / seats the tenant already has
    mode: FollowerMode | str | None = None  # the follower mode asked for


@dataclass(frozen=True, slots=True)
class Entitlements:
    """Resolved feature flags of one subscription. ``None`` limits mean unlimited."""

    plan_id: str  # kept as text so a retired plan id still loads
    active: bool
    max_vaults: int | None
    seats: int | None
    follower_modes: frozenset[FollowerMode]
    flip_mode: bool = False
    persona_boosts: bool = False
    replay_dashboards: bool = False
    audit_read: bool = False
    custom_vault_caps: bool = False
    dedicated_signing_keys: bool = False
    api_pull_feed: bool = False
    priority_latency: bool = False

    @classmethod
    def none(cls) -> Entitlements:
        """No subscription at all: nothing but read-only audit access."""
        return cls(plan_id="none", active=False, max_vaults=0, seats=0,
                   follower_modes=frozenset(), audit_read=True)

    def with_access(self, access: Access) -> Entitlements:
        """The same grant, switched on or off by the subscription's effective status."""
        active = Access(access).grants_features
        if active == self.active:
            return self
        return replace(self, active=active)

    def flag(self, feature: Feature) -> bool:
        """The purchased value of an on/off feature, regardless of ``active``."""
        if feature not in FLAG_FEATURES:
            raise ValueError(f"{feature} is not an on/off feature")
        return bool(getattr(self, feature.value))

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": ENTITLEMENTS_SCHEMA,
            "plan": self.plan_id,
            "active": self.active,
            "limits": {"vaults": self.max_vaults, "seats": self.seats},
            "follower_modes": sorted(m.value for m in self.follower_modes),
            "features": {f.value: self.flag(f) for f in FLAG_FEATURES},
        }

    @classmethod
    def from_json(cls, doc: object) -> Entitlements:
        """Read a stored document as it is; never consults ``PLANS``.

        Missing features read as off and missing limits as 0 (fail closed); unknown feature
        names and follower modes are ignored so a document written by a newer version loads.
        """
        if not isinstance(doc, Mapping):
            raise _bad("entitlements must be a JSON object")
        plan = doc.get("plan")
        if not isinstance(plan, str) or not plan:
            raise _bad("entitlements.plan must be a non-empty string")
        active = doc.get("active", False)
        if not isinstance(active, bool):
            raise _bad("entitlements.active must be a boolean")
        limits = doc.get("limits", {})
        if not isinstance(limits, Mapping):
            raise _bad("entitlements.limits must be an object")
        modes_doc = doc.get("follower_modes", [])
        if not isinstance(modes_doc, list) or not all(isinstance(m, str) for m in modes_doc):
            raise _bad("entitlements.follower_modes must be a list of strings")
        known_modes = {m.value: m for m in FollowerMode}
        modes = frozenset(known_modes[m] for m in modes_doc if m in known_modes)
        features = doc.get("features", {})
        if not isinstance(features, Mapping):
            raise _bad("entitlements.features must be an object")
        flags: dict[str, bool] = {}
        for f in FLAG_FEATURES:
            value = features.get(f.value, False)
            if not isinstance(value, bool):
                raise _bad(f"entitlements.features.{f.value} must be a boolean")
            flags[f.value] = value
        return cls(
            plan_id=plan, active=active,
            max_vaults=_limit(limits, "vaults"), seats=_limit(limits, "seats"),
            follower_modes=modes, **flags,
        )


def _limit(limits: Mapping[str, object], key: str) -> int | None:
    if key not in limits:
        return 0
    value = limits[key]
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _bad(f"entitlements.limits.{key} must be a non-negative integer or null")
    return value


def _bad(message: str) -> ValidationFailed:
    return ValidationFailed(message, code="invalid_entitlements", field="entitlements")


@dataclass(frozen=True, slots=True)
class Plan:
    plan_id: PlanId
    name: str
    max_vaults: int | None  # None = unlimited
    seats: int | None  # None = unlimited
    follower_modes: frozenset[FollowerMode]
    flip_mode: bool = False
    persona_boosts: bool = False
    replay_dashboards: bool = False
    audit_read: bool = True  # every plan can read its audit log (read-only)
    custom_vault_caps: bool = False
    dedicated_signing_keys: bool = False
    api_pull_feed: bool = False
    priority_latency: bool = False

    def entitlements(self, access: Access = Access.ENTITLED) -> Entitlements:
        return Entitlements(
            plan_id=self.plan_id.value,
            active=Access(access).grants_features,
            max_vaults=self.max_vaults,
            seats=self.seats,
            follower_modes=self.follower_modes,
            **{f.value: bool(getattr(self, f.value)) for f in FLAG_FEATURES},
        )


_BASIC_MODES = frozenset({FollowerMode.PROPORTIONAL, FollowerMode.SHADOW})
_ALL_MODES = frozenset(FollowerMode)

PLANS: Mapping[PlanId, Plan] = MappingProxyType({
    PlanId.CORE: Plan(
        plan_id=PlanId.CORE, name="Core", max_vaults=1, seats=1,
        follower_modes=_BASIC_MODES,
    ),
    PlanId.PRO: Plan(
        plan_id=PlanId.PRO, name="Pro", max_vaults=10, seats=3,
        follower_modes=_ALL_MODES,
        flip_mode=True, persona_boosts=True, replay_dashboards=True,
    ),
    PlanId.INSTITUTIONAL: Plan(
        plan_id=PlanId.INSTITUTIONAL, name="Institutional", max_vaults=None, seats=None,
        follower_modes=_ALL_MODES,
        flip_mode=True, persona_boosts=True, replay_dashboards=True,
        custom_vault_caps=True, dedicated_signing_keys=True, api_pull_feed=True,
        priority_latency=True,
    ),
})


def get_plan(plan_id: object) -> Plan:
    try:
        return PLANS[PlanId(plan_id)] if isinstance(plan_id, str) else PLANS[PlanId("?")]
    except (ValueError, KeyError):
        allowed = ", ".join(p.value for p in PlanId)
        raise ValidationFailed(f"plan must be one of {allowed}", code="unknown_plan",
                               field="plan_id") from None


def entitlements_for(plan_id: object, access: Access = Access.ENTITLED) -> Entitlements:
    """Fresh entitlements of a plan as currently defined (use when a subscription starts)."""
    return get_plan(plan_id).entitlements(access)


_OK = Decision(True, Reason.OK)
_COUNTED = {Feature.VAULTS: ("max_vaults", Reason.VAULT_LIMIT_REACHED),
            Feature.SEATS: ("seats", Reason.SEAT_LIMIT_REACHED)}


def decide(
    entitlements: Entitlements, feature: Feature | str, *,
    context: DecisionContext | None = None,
) -> Decision:
    """May the holder of ``entitlements`` use ``feature`` now?

    ``Feature.VAULTS``/``Feature.SEATS`` need ``context.current_count`` (how many exist
    already; the question is whether one more fits), ``Feature.FOLLOWER_MODE`` needs
    ``context.mode``; a missing context is a programming error and raises ``ValueError``.
    Unknown feature names are refused (``unknown_feature``), never allowed.
    """
    try:
        feat = Feature(feature)
    except ValueError:
        return Decision(False, Reason.UNKNOWN_FEATURE)
    ctx = context or DecisionContext()
    ent = entitlements

    if feat is Feature.AUDIT_READ:  # read-only history stays readable after a lapse
        return _OK if ent.audit_read else Decision(False, Reason.PLAN_LACKS_FEATURE)

    # validate the context before looking at the subscription, so a caller's bug shows early
    count = 0
    if feat in _COUNTED:
        if ctx.current_count is None or isinstance(ctx.current_count, bool) \
                or ctx.current_count < 0:
            raise ValueError(f"{feat} needs context.current_count >= 0")
        count = ctx.current_count
    mode: FollowerMode | None = None
    if feat is Feature.FOLLOWER_MODE:
        if ctx.mode is None:
            raise ValueError("follower_mode needs context.mode")
        try:
            mode = FollowerMode(ctx.mode)
        except ValueError:
            return Decision(False, Reason.UNKNOWN_FEATURE)

    if not ent.active:
        return Decision(False, Reason.SUBSCRIPTION_INACTIVE)

    if feat in _COUNTED:
        attr, reason = _COUNTED[feat]
        limit: int | None = getattr(ent, attr)
        if limit is None:
            return _OK
        if count >= limit:
            return Decision(False, reason, limit)
        return Decision(True, Reason.OK, limit)
    if feat is Feature.FOLLOWER_MODE:
        return _OK if mode in ent.follower_modes else Decision(False, Reason.MODE_NOT_IN_PLAN)
    return _OK if ent.flag(feat) else Decision(False, Reason.PLAN_LACKS_FEATURE)


def can_use_mode(entitlements: Entitlements, mode: FollowerMode | str) -> Decision:
    return decide(entitlements, Feature.FOLLOWER_MODE, context=DecisionContext(mode=mode))


def can_add_vault(entitlements: Entitlements, current_count: int) -> Decision:
    return decide(entitlements, Feature.VAULTS,
                  context=DecisionContext(current_count=current_count))


def can_add_seat(entitlements: Entitlements, current_count: int) -> Decision:
    return decide(entitlements, Feature.SEATS,
                  context=DecisionContext(current_count=current_count))


def can_apply_overlay(entitlements: Entitlements, kind: OverlayKind | str) -> Decision:
    try:
        feature = _OVERLAY_FEATURE[OverlayKind(kind)]
    except ValueError:
        return Decision(False, Reason.UNKNOWN_FEATURE)
    return decide(entitlements, feature)
