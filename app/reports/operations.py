"""Reports of coercion (举报): receive, track, resolve.  Every step is audited; a report's text
is never changed and its status only moves forward (the database refuses anything else,
migration 0013)."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select, text

from app.audit import operations as audit
from app.errors import DomainError, Rule
from app.extensions import db

from .models import CHANNELS, FINAL, NEXT, STATUSES, CoercionReport, CoercionReportStep

LAW = _l("农村土地承包法 (Rural Land Contracting Law) art 27; 乡村振兴促进法 (Rural "
         "Revitalisation Promotion Law) art 55: giving up a right may not be made a condition "
         "of settling in town; every attempt is recorded")
EMPTY = Rule("report.empty", _l("Please say what happened: who asked you to give up which "
                                "right, and when."), LAW)
TOO_LONG = Rule("report.too_long", _l("%(field)s is too long (at most %(n)s characters)."), LAW)
BAD_CHANNEL = Rule("report.channel", _l("'%(channel)s' is not a way to report."), LAW)
BAD_STEP = Rule("report.step", _l("A report that is %(old)s cannot become %(new)s; a report "
                                  "moves forward only: received → investigating → "
                                  "substantiated or unfounded."), LAW, 409)
NEEDS_NOTE = Rule("report.note", _l("Every step of a report needs its note; a resolution says "
                                    "what was found and done."), LAW)

STATUS_LABELS = {"received": _l("received"), "investigating": _l("investigating"),
                 "substantiated": _l("substantiated"), "unfounded": _l("unfounded")}
CHANNEL_LABELS = {"public": _l("public form"), "notice_page": _l("public notice page"),
                  "verify_page": _l("certificate verification page"),
                  "farmer_page": _l("farmer's own page")}
SUPERVISORS = ("compliance_supervisor",)

_who = audit.actor_name


def submit(actor, channel: str, what_happened: str, who_asked: str | None = None,
           contact: str | None = None, context: str | None = None,
           division_code: str | None = None, reporter_user_id: int | None = None) \
        -> CoercionReport:
    """Receive a report from anyone (signed in or not); contact details are optional."""
    if channel not in CHANNELS:
        raise DomainError(BAD_CHANNEL, channel=channel)
    what_happened = (what_happened or "").strip()
    if not what_happened:
        raise DomainError(EMPTY)
    for field, value, n in (("what_happened", what_happened, 4000),
                            ("who_asked", who_asked, 200), ("contact", contact, 100)):
        if value and len(value) > n:
            raise DomainError(TOO_LONG, field=field, n=n)
    r = CoercionReport(channel=channel, what_happened=what_happened,
                       who_asked=(who_asked or "").strip() or None,
                       contact=(contact or "").strip() or None, context=context,
                       division_code=division_code, reporter_user_id=reporter_user_id)
    db.session.add(r)
    db.session.flush()
    # the audit log names the report, not the reporter's words or contact
    audit.record(actor, "report.received", "coercion_report", r.id,
                 {"channel": channel, "context": context, "division": division_code})
    return r


def locate(channel: str, context: str | None, farmer=None) -> tuple[str | None, str | None]:
    """Where a report came from and the division it belongs to (for the supervisors'
    jurisdiction): the farmer's household, a campaign's villagers' group (public notice page),
    a certificate's household (verification page).  A context that names nothing is dropped."""
    if farmer is not None:
        return f"household {farmer.household_code}", farmer.household_code
    kind, _sep, ident = (context or "").partition(":")
    if not ident.isdigit():
        return None, None
    sql = {("notice_page", "campaign"): "SELECT fbfbm FROM campaign WHERE id = :i",
           ("verify_page", "certificate"): "SELECT household_code FROM certificate WHERE id = :i"}
    q = sql.get((channel, kind))
    code = db.session.scalar(text(q), {"i": int(ident)}) if q else None
    return (f"{kind} {ident}", code) if code else (None, None)


def opened(actor, r: CoercionReport) -> bool:
    """A supervisor opened a report: reading the reporter's contact is logged."""
    if not r.contact:
        return False
    audit.record(actor, "report.read_contact", "coercion_report", r.id)
    return True


def step(actor, r: CoercionReport, to_status: str, note: str) -> CoercionReport:
    """Move a report on (investigating, then substantiated or unfounded), with the note."""
    if to_status not in STATUSES or to_status not in NEXT[r.status]:
        raise DomainError(BAD_STEP, old=STATUS_LABELS.get(r.status, r.status),
                          new=STATUS_LABELS.get(to_status, to_status))
    note = (note or "").strip()
    if not note:
        raise DomainError(NEEDS_NOTE)
    db.session.add(CoercionReportStep(report_id=r.id, by=_who(actor), from_status=r.status,
                                      to_status=to_status, note=note))
    db.session.flush()  # the step first: the database checks each status change has its step
    old = r.status
    r.status = to_status
    if to_status in FINAL:
        r.resolution, r.handled_by, r.handled_at = note, _who(actor), func.clock_timestamp()
    db.session.flush()
    db.session.refresh(r)
    audit.record(actor, "report.step", "coercion_report", r.id,
                 {"from": old, "to": to_status}, note)
    return r


def listing(like: str | None, status: str | None = None) -> list[CoercionReport]:
    q = select(CoercionReport).order_by(CoercionReport.id.desc())
    if like:
        q = q.where(CoercionReport.division_code.like(like)
                    | CoercionReport.division_code.is_(None))
    if status:
        q = q.where(CoercionReport.status == status)
    return list(db.session.scalars(q.limit(1000)))


def counts(like: str | None) -> dict:
    """Reports per status (every status present, zero when none)."""
    q = select(CoercionReport.status, func.count()).group_by(CoercionReport.status)
    if like:
        q = q.where(CoercionReport.division_code.like(like)
                    | CoercionReport.division_code.is_(None))
    got = dict(db.session.execute(q).all())
    out = {s: got.get(s, 0) for s in STATUSES}
    out["total"] = sum(out.values())
    return out
