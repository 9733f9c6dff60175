"""The registry's settings (registry_setting) for administrators: a catalogue of every key the
features read, each value validated, each change audited with the old and new value and the
reason (the table keeps one row per key, so the audit log is its history)."""
from __future__ import annotations

from dataclasses import dataclass

from flask_babel import lazy_gettext as _l
from sqlalchemy import select, text

from app.audit import operations as audit
from app.audit.models import AuditLog
from app.errors import DomainError, Rule
from app.extensions import db
from app.market.operations import BOUNDS, DEFAULTS, METHODS
from app.parcels.models import RegistrySetting, RegistrySettingVersion

SOURCE = _l("Sanquan settings policy: registry rules kept as data, each change audited with "
            "its reason (LADM; 农村土地承包法; 2021 办法)")
BAD_VALUE = Rule("settings.value", _l("%(key)s: %(why)s"), SOURCE)
NEEDS_REASON = Rule("settings.reason", _l("A change of a setting needs its reason."), SOURCE)
UNKNOWN = Rule("settings.unknown", _l("%(key)s is not a setting."), SOURCE, 404)
STALE = Rule("settings.stale", _l("%(key)s was changed by someone else meanwhile (now: %(now)s); "
                                  "reload the page and decide again."), SOURCE, 409)


@dataclass(frozen=True)
class Spec:
    name: str  # the key, or its prefix for a county setting ("homestead_cap_m2")
    label: object
    kind: str  # int | float | onoff | choice
    default: object
    lo: float | None = None
    hi: float | None = None
    per_county: bool = False
    choices: tuple = ()
    optional: bool = False  # may be left blank (no value: the rule does not apply)


def catalogue() -> list[Spec]:

    specs = [
        Spec("notice_days", _l("Public notice of a campaign, days"), "int", 7, 7, 60),
        Spec("overlap_tolerance_m2", _l("Overlap tolerated as survey noise, m²"), "float", 1.0,
             0, 10),
        Spec("area_tolerance_m2", _l("Delivered area may differ from the computed area by, m²"),
             "float", 1.0, 0, 50),
        Spec("withdrawal_cooling_days", _l("Withdrawal cooling-off period, days"), "int", 30,
             15, 365),
        Spec("withdrawal_check_window_days",
             _l("A withdrawal this soon after settling in town is flagged, days"), "int", 180,
             # at least a month: a window of 0 would switch off the voluntariness check that
             # 乡村振兴促进法 art 55 / domain rule 4 ask for
             30, 3650),
        Spec("homestead_cap_m2", _l("Homestead area cap, m²"), "float", None, 50, 1000,
             per_county=True, optional=True),
        Spec("withdrawal_pilot", _l("Withdrawal pilot"), "onoff", "off", per_county=True),
    ]
    for name, default in DEFAULTS.items():
        if name == "method":
            specs.append(Spec("market_method", _l("Market: default method"), "choice", default,
                              per_county=True, choices=METHODS))
        else:
            lo, hi = BOUNDS.get(name, (0, 100000))
            specs.append(Spec(f"market_{name}", _l("Market: %(name)s", name=name), "int",
                              default, lo, hi, per_county=True))
    return specs


def counties() -> list[str]:
    return list(db.session.scalars(text(
        "SELECT code FROM division WHERE level = 'county' ORDER BY code")))


def key_of(spec: Spec, county: str | None) -> str:
    return f"{spec.name}:{county}" if spec.per_county else spec.name


def spec_of(key: str) -> tuple[Spec, str | None]:
    name, _, county = key.partition(":")
    for s in catalogue():
        if s.name == name and bool(county) == s.per_county:
            if county and county not in counties():
                break
            if key_of(s, county or None) != key:  # "notice_days:" — a key nobody reads
                break
            return s, county or None
    raise DomainError(UNKNOWN, key=key)


def rows() -> list[dict]:
    """Every setting (per county where it varies by county) with its value or default."""
    stored = {r.key: r.value for r in db.session.scalars(select(RegistrySetting))}
    out = []
    cs = counties()
    for s in catalogue():
        for c in (cs if s.per_county else [None]):
            k = key_of(s, c)
            out.append({"key": k, "spec": s, "county": c, "value": stored.get(k),
                        "default": s.default})
    return out


def validate(spec: Spec, raw) -> str | None:
    v = (raw or "").strip() if isinstance(raw, str) else raw
    if v in (None, ""):
        if spec.optional:
            return None
        raise DomainError(BAD_VALUE, key=spec.name, why=_l("a value is required"))
    if spec.kind == "onoff":
        if v not in ("on", "off"):
            raise DomainError(BAD_VALUE, key=spec.name, why=_l("on or off"))
        return v
    if spec.kind == "choice":
        if v not in spec.choices:
            raise DomainError(BAD_VALUE, key=spec.name, why=", ".join(spec.choices))
        return v
    try:
        num = int(v) if spec.kind == "int" else float(v)
    except (TypeError, ValueError):
        raise DomainError(BAD_VALUE, key=spec.name,
                          why=_l("a whole number") if spec.kind == "int" else _l("a number")
                          ) from None
    if num != num or (spec.lo is not None and num < spec.lo) or \
            (spec.hi is not None and num > spec.hi):
        raise DomainError(BAD_VALUE, key=spec.name,
                          why=_l("between %(lo)s and %(hi)s", lo=spec.lo, hi=spec.hi))
    return str(num)


def change(actor, key: str, raw, reason: str, expected: str | None = None) -> bool:
    """Set (or, for an optional setting, clear) one value; audited with old, new and reason.
    `expected`: the value the administrator saw ("" for not set); when given and the stored
    value differs (another administrator changed it meanwhile), refused — no lost update.
    Returns False when the value did not change (nothing written)."""
    spec, _county = spec_of(key)
    value = validate(spec, raw)
    if not (reason or "").strip():
        raise DomainError(NEEDS_REASON)
    # one writer per key at a time, whether or not its row exists yet (two first inserts
    # would otherwise race to a unique violation)
    db.session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"),
                       {"k": "registry_setting:" + key})
    row = db.session.get(RegistrySetting, key, with_for_update=True, populate_existing=True)
    old = row.value if row else None
    if expected is not None and (expected or None) != old:
        raise DomainError(STALE, key=key, now=old if old is not None else "—")
    if old == value:
        return False
    # the version the trigger appends (migration 0028) names who and why, like the audit
    _name_the_change(audit.actor_name(actor), reason.strip())
    if value is None:
        db.session.delete(row)
    elif row is None:
        db.session.add(RegistrySetting(key=key, value=value, note=str(spec.label)[:200]))
    else:
        row.value = value
    db.session.flush()
    _name_the_change("", "")
    audit.record(actor, "settings.change", "registry_setting", key,
                 {"value": [old, value]}, reason.strip())
    return True


def _name_the_change(actor: str, reason: str) -> None:
    db.session.execute(text("SELECT set_config('sanquan.actor', :a, true), "
                            "set_config('sanquan.reason', :r, true)"), {"a": actor, "r": reason})


def versions(key: str) -> list[RegistrySettingVersion]:
    """Every value the key has had, oldest first (None: removed, the default applied)."""
    return list(db.session.scalars(select(RegistrySettingVersion).where(
        RegistrySettingVersion.key == key).order_by(RegistrySettingVersion.id)))


def history(limit: int = 50) -> list[AuditLog]:
    return list(db.session.scalars(select(AuditLog).where(
        AuditLog.object_type == "registry_setting").order_by(AuditLog.id.desc()).limit(limit)))
