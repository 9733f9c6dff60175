"""Rights-confirmation campaigns (确权): public notice, objections, registration (登簿)."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select, text

from app.audit import operations as audit
from app.errors import DomainError, Rule
from app.extensions import db
from app.grounds import guard_text, refuse
from app.parcels.models import Parcel, RegistrySetting
from app.people.models import Household, HouseholdMember
from app.people.operations import rows_of
from app.rights import operations as rights

from .models import Campaign, Objection

RULES = _l("农村土地承包经营权确权登记颁证 procedure: public notice, objections heard, then "
           "registration (农业部 确权登记颁证工作规程)")
NOT_DRAFT = Rule("campaign.state", _l("The campaign is %(status)s; this step is not possible "
                                      "now."), RULES, 409)
NOTICE_RUNNING = Rule("campaign.notice", _l("The public notice runs until %(end)s; the "
                                            "campaign can register only after it."), RULES, 409)
# The notice's last day (one definition): the notice runs from notice_start through notice_end,
# both days included — objections are lodged on either — and registration is possible only from
# the day after notice_end. The period is configurable local policy (domain.md, opening paragraph;
# registry setting notice_days). The database's copy of the rule is the SQL function
# notice_has_run() of migration 0021_house, which campaign_guard calls.
OPEN_OBJECTIONS = Rule("campaign.open_objection",
                       _l("%(n)s objection(s) are still open; every objection must be upheld "
                          "(with its correction) or dismissed (with reasons) before "
                          "registration."), RULES, 409)
OUTSIDE_NOTICE = Rule("campaign.not_in_notice",
                      _l("Objections are lodged while the notice runs (%(start)s – %(end)s)."),
                      RULES, 409)
UNKNOWN_PARCEL = Rule("campaign.objection.parcel",
                      _l("Parcel %(code)s is not in this campaign's villagers' group."), RULES)
NEEDS_CORRECTION = Rule(
    "campaign.objection.correction",
    _l("An upheld objection needs its correction: a new version of parcel %(code)s recorded "
       "after the objection was lodged."), RULES)
NEEDS_REASONS = Rule("campaign.objection.reasons",
                     _l("Dismissing an objection needs the reasons."), RULES)
BAD_OBJECTION = Rule("campaign.objection.subject",
                     _l("An objection is about a parcel, a boundary, an area or a holder, and "
                        "says what is wrong."), RULES)
SUBJECTS = ("parcel", "boundary", "area", "holder")
NO_GROUP = Rule("campaign.group", _l("%(fbfbm)s is not a registered villagers' group (issuing "
                                     "party)."), RULES, 404)


_who = audit.actor_name


def notice_days() -> int:
    row = db.session.get(RegistrySetting, "notice_days")
    return int(row.value) if row else 7


def open_campaign(actor, fbfbm: str, import_batch_id: int | None = None,
                  reason: str | None = None) -> Campaign:
    if not db.session.scalar(text("SELECT 1 FROM collective WHERE fbfbm = :f"), {"f": fbfbm}):
        raise DomainError(NO_GROUP, fbfbm=fbfbm)
    c = Campaign(fbfbm=fbfbm, import_batch_id=import_batch_id, created_by=_who(actor))
    db.session.add(c)
    db.session.flush()
    audit.record(actor, "campaign.open", "campaign", c.id, {"fbfbm": fbfbm,
                                                            "batch": import_batch_id}, reason)
    return c


def publish_notice(actor, c: Campaign, start: dt.date | None = None,
                   days: int | None = None) -> Campaign:
    if c.status != "draft":
        raise DomainError(NOT_DRAFT, status=c.status)
    c.notice_start = start or dt.date.today()
    c.notice_end = c.notice_start + dt.timedelta(days=days or notice_days())
    c.status = "notice"
    db.session.flush()
    audit.record(actor, "campaign.notice", "campaign", c.id,
                 {"from": c.notice_start, "to": c.notice_end})
    return c


def notice_list(c: Campaign):
    """Households, parcels and areas of the group, for the printed and public notice."""
    return db.session.execute(select(
        Parcel.household_code, Household.name.label("holder"), Parcel.code, Parcel.name,
        Parcel.kind, Parcel.scmj, Parcel.scmjm)
        .outerjoin(Household, Household.cbfbm == Parcel.household_code)
        .where(Parcel.code.like(c.fbfbm + "%") | Parcel.household_code.like(c.fbfbm + "%"),
               Parcel.end_lifespan.is_(None))
        .order_by(Parcel.household_code, Parcel.code)).all()


def notice_by_household(c: Campaign) -> list[dict]:
    """The notice list grouped by household, with each household's total area."""
    out: list[dict] = []
    for r in notice_list(c):
        if not out or out[-1]["code"] != r.household_code:
            out.append({"code": r.household_code, "holder": r.holder, "parcels": [],
                        "mu": Decimal(0), "m2": Decimal(0)})
        out[-1]["parcels"].append(r)
        out[-1]["mu"] += r.scmjm
        out[-1]["m2"] += r.scmj
    return out


def progress(c: Campaign) -> dict:
    """Where the campaign stands: households and parcels, objections, rights, certificates."""
    g = c.fbfbm + "%"
    row = db.session.execute(text("""
        SELECT (SELECT count(*) FROM household WHERE cbfbm LIKE :g AND ended_on IS NULL),
               (SELECT count(*) FROM parcel WHERE end_lifespan IS NULL
                  AND (code LIKE :g OR household_code LIKE :g)),
               (SELECT count(*) FROM land_right WHERE fbfbm = :f AND status = 'current'
                  AND end_lifespan IS NULL AND kind = 'land_contract'),
               (SELECT count(*) FROM land_right WHERE fbfbm = :f AND status = 'current'
                  AND end_lifespan IS NULL AND kind = 'homestead'),
               (SELECT count(*) FROM certificate WHERE campaign_id = :c AND status = 'valid'),
               (SELECT count(DISTINCT household_code) FROM certificate
                  WHERE campaign_id = :c AND status = 'valid')"""),
        {"g": g, "f": c.fbfbm, "c": c.id}).one()
    objections = {s: 0 for s in ("open", "upheld", "dismissed")}
    for o in c.objections:
        objections[o.status] += 1
    steps = ["draft", "notice", "registered", "certified"]
    stage = "certified" if c.status == "registered" and row[4] and row[4] >= row[2] + row[3] \
        else c.status
    return {"households": row[0], "parcels": row[1], "contracts": row[2], "homesteads": row[3],
            "certificates": row[4], "certified_households": row[5], "objections": objections,
            "stage": stage, "step": steps.index(stage) + 1, "steps": len(steps)}


def lodge_objection(actor, c: Campaign, subject: str, text: str, lodged_by: str,
                    parcel_code: str | None = None, today: dt.date | None = None) -> Objection:
    today = today or dt.date.today()
    if not notice_running(c, today):
        raise DomainError(OUTSIDE_NOTICE, start=c.notice_start or "—", end=c.notice_end or "—")
    if subject not in SUBJECTS or not (text or "").strip() or not (lodged_by or "").strip():
        raise DomainError(BAD_OBJECTION)
    if parcel_code and not db.session.scalar(select(Parcel.id).where(
            Parcel.code == parcel_code, Parcel.end_lifespan.is_(None),
            Parcel.code.like(c.fbfbm + "%") | Parcel.household_code.like(c.fbfbm + "%"))):
        raise DomainError(UNKNOWN_PARCEL, code=parcel_code)
    o = Objection(campaign_id=c.id, parcel_code=parcel_code, subject=subject, text=text,
                  lodged_by=lodged_by)
    db.session.add(o)
    db.session.flush()
    audit.record(actor, "campaign.objection", "campaign", c.id,
                 {"objection": o.id, "parcel": parcel_code, "subject": subject}, text)
    return o


def uphold(actor, o: Objection, resolution: str) -> Objection:
    """Uphold an objection: the correction must already be in the register as a new version
    of the parcel (an amendment or mutation made after the objection was lodged)."""
    if o.status != "open":
        raise DomainError(NOT_DRAFT, status=o.status)
    guard_text(actor, "register", {"resolution": resolution}, "campaign.objection.refused",
               "campaign", o.campaign_id, reason=resolution)
    corrected = db.session.scalar(select(Parcel).where(
        Parcel.code == o.parcel_code, Parcel.end_lifespan.is_(None),
        Parcel.begin_lifespan > o.lodged_at)) if o.parcel_code else None
    if corrected is None:
        raise DomainError(NEEDS_CORRECTION, code=o.parcel_code or "—")
    o.status, o.resolution, o.correction_parcel_id = "upheld", resolution, corrected.id
    o.resolved_by, o.resolved_at = _who(actor), func.now()
    db.session.flush()
    audit.record(actor, "campaign.objection.upheld", "campaign", o.campaign_id,
                 {"objection": o.id, "correction": corrected.id}, resolution)
    return o


def dismiss(actor, o: Objection, reasons: str) -> Objection:
    if o.status != "open":
        raise DomainError(NOT_DRAFT, status=o.status)
    if not (reasons or "").strip():
        raise DomainError(NEEDS_REASONS)
    guard_text(actor, "register", {"reasons": reasons}, "campaign.objection.refused",
               "campaign", o.campaign_id, reason=reasons)
    o.status, o.resolution = "dismissed", reasons.strip()
    o.resolved_by, o.resolved_at = _who(actor), func.now()
    db.session.flush()
    audit.record(actor, "campaign.objection.dismissed", "campaign", o.campaign_id,
                 {"objection": o.id}, reasons)
    return o


def register(actor, c: Campaign, today: dt.date | None = None) -> dict:
    """登簿: once the notice has run and no objection is open, the group's rights are
    registered; registrar and time are recorded."""
    today = today or dt.date.today()
    if c.status != "notice":
        raise DomainError(NOT_DRAFT, status=c.status)
    if not notice_has_run(c, today):
        raise DomainError(NOTICE_RUNNING, end=c.notice_end)
    open_n = sum(1 for o in c.objections if o.status == "open")
    if open_n:
        raise DomainError(OPEN_OBJECTIONS, n=open_n)
    made = rights.register_from_batch(actor, c.import_batch_id, fbfbm=c.fbfbm) \
        if c.import_batch_id else {}
    c.status, c.registrar, c.registered_at = "registered", _who(actor), func.now()
    db.session.flush()
    audit.record(actor, "campaign.register", "campaign", c.id,
                 {k: v for k, v in made.items() if k != "refused"})
    return made


# ---------------------------------------------------------------------------------------------
# Who may object online, and who may read the notice once it has run.

NOT_ON_NOTICE = Rule(
    "campaign.objection.not_concerned",
    _l("Only a household on this notice (or its member acting for it) may object online; "
       "others raise it with the land bureau, which records it."), RULES, 403)
def notice_households(c: Campaign) -> set[str]:
    return {r.household_code for r in notice_list(c) if r.household_code}


def households_of(user) -> set[str]:
    """The household codes a farmer account acts for: its own, and the current household of the
    person it belongs to (the household's member acting for it)."""
    codes = {user.household_code} if user.household_code else set()
    if user.person_id:
        codes |= set(db.session.scalars(
            select(Household.cbfbm).join(HouseholdMember,
                                         HouseholdMember.household_id == Household.id)
            .where(HouseholdMember.person_id.in_(rows_of([user.person_id])),  # every county's
                   HouseholdMember.left_on.is_(None))))
    return codes


def concerned(user, c: Campaign) -> bool:
    """A farmer whose household is on the notice."""
    return (user.is_authenticated and user.role == "farmer"
            and bool(households_of(user) & notice_households(c)))


def check_online_objector(user, c: Campaign) -> None:
    if not concerned(user, c):
        refuse(user if user.is_authenticated else None, DomainError(NOT_ON_NOTICE),
               "campaign.objection.refused", "campaign", c.id,
               {"role": getattr(user, "role", None)})


def notice_running(c: Campaign, today: dt.date | None = None) -> bool:
    """Objections are accepted today: the notice is published and today is one of its days,
    its last day (notice_end) included."""
    today = today or dt.date.today()
    return c.status == "notice" and c.notice_start is not None and c.notice_end is not None \
        and c.notice_start <= today and not notice_has_run(c, today)


def notice_has_run(c: Campaign, today: dt.date | None = None) -> bool:
    """Registration may happen today: the notice's last day is over (today > notice_end). Same
    rule as the SQL function notice_has_run() (migration 0021_house)."""
    today = today or dt.date.today()
    return c.notice_end is not None and today > c.notice_end


def campaigns(like: str | None = None, limit: int = 500) -> list[Campaign]:
    """Campaigns newest first; with `like`, those of groups whose code is LIKE it."""
    stmt = select(Campaign).order_by(Campaign.id.desc())
    if like:
        stmt = stmt.where(Campaign.fbfbm.like(like))
    return list(db.session.scalars(stmt.limit(limit)))
