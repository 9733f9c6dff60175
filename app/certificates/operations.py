"""Certificates (颁证): the land-contract right certificate and the homestead right entry.

A certificate freezes what it certifies (holder, co-holders with masked ID numbers, parcels,
term, authority) at issue; its PDF is rendered from that snapshot.  Reissue (补发) and
replacement (换发) supersede it with a new edition, cancellation (注销) ends it; each step needs
its reason and is audited, and the database refuses anything else (migration 0008)."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import secrets
import zipfile
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

from flask import current_app
from flask_babel import lazy_gettext as _l
from shapely import from_wkb
from sqlalchemy import select, text

from app import codes
from app.audit import operations as audit
from app.errors import DomainError, Rule
from app.extensions import db
from app.grounds import ART27_55_17, guard_text, refuse
from app.jobs import operations as jobs
from app.people.idnumber import mask, mask_name
from app.people.models import Household
from app.rights.models import Right
from app.security import csv_writer, public_base_url
from gis.svg import plan

from . import render
from .models import Certificate

LAW = _l("农村土地承包法 (Rural Land Contracting Law) art 24; 不动产登记暂行条例实施细则 "
         "(Implementing Rules of the Interim Regulations on Real Property Registration) arts "
         "20–23")
NOT_CURRENT = Rule("certificate.right_not_current",
                   _l("Only a current registered right is certified; this right has ended or "
                      "been superseded."), LAW, 409)
ALREADY = Rule("certificate.already_issued",
               _l("Certificate %(number)s is already valid for this right; a further copy is a "
                  "reissue (补发) or a replacement (换发)."), LAW, 409)
NOT_VALID = Rule("certificate.not_valid",
                 _l("Certificate %(number)s is %(status)s; only a valid certificate can be "
                    "reissued, replaced or cancelled."), LAW, 409)
NEEDS_REASON = Rule("certificate.reason", _l("A reissue, replacement or cancellation needs its "
                                             "reason."), LAW)
NO_PARCELS = Rule("certificate.no_parcels",
                  _l("The right covers no current parcel; there is nothing to certify."), LAW)
NOT_REGISTERED = Rule("certificate.campaign_not_registered",
                      _l("Certificates are issued after registration (登簿); campaign %(id)s is "
                         "%(status)s."), LAW, 409)
NOT_CERTIFIABLE = Rule("certificate.kind",
                       _l("A %(kind)s is not certified by this register."), LAW)
CANCEL_GROUND = Rule(
    "certificate.cancel_ground",
    _l("'%(ground)s' is not a ground to cancel a certificate. A certificate is cancelled only "
       "when its right has ended (on a lawful ground), or to correct an error, with the "
       "reference of the correction; a lost or damaged certificate is reissued or replaced, "
       "and settling in town is never a ground."), ART27_55_17)
RIGHT_STILL_CURRENT = Rule(
    "certificate.right_still_current",
    _l("The right of certificate %(number)s is still current: a certificate is cancelled on "
       "this ground only after its right has ended on a lawful ground."), ART27_55_17, 409)
NEEDS_REFERENCE = Rule(
    "certificate.correction_reference",
    _l("Cancelling to correct an error needs the reference of the correction (the register "
       "correction or decision that found the error)."), LAW)
RACE = Rule("certificate.concurrent",
            _l("Another certificate for this right was issued at the same moment; reload."),
            LAW, 409)

# The closed list of cancellation grounds (注销), tied to the right's state; migration 0013
# holds the same list as a CHECK and a trigger.  "new_edition" is the ground of a superseded
# certificate (reissue 补发, replacement 换发).
CANCEL_GROUNDS = ("right_ended", "error_corrected")
CANCEL_GROUND_LABELS = {"right_ended": _l("the right has ended"),
                        "error_corrected": _l("an error corrected (with its reference)")}

_who = audit.actor_name


# Other certificate registers (higher layers, e.g. the market's transaction certificates)
# register a function token -> response | None here, so /verify/TOKEN serves them too without
# this package depending on them.
VERIFIERS: list = []


def base_url() -> str:
    """PUBLIC_BASE_URL (required in production); never the request's Host header."""
    return public_base_url()


def verify_url(token: str, base: str | None = None) -> str:
    return f"{(base or base_url()).rstrip('/')}/verify/{token}"


def authority(county: str, kind: str) -> str:
    """The issuing authority: the county-level government for contract land (农村土地承包法
    art 24); the county's real property registration office for homesteads."""
    rows = dict(db.session.execute(text(
        "SELECT code, name FROM division WHERE code IN (:county, :city)"),
        {"county": county, "city": county[:4] + "00"}).all())
    place = rows.get(county[:4] + "00", "") + rows.get(county, county)
    return place + ("人民政府" if kind == "land_contract" else "不动产登记中心")


def _number(right: Right, county: str, year: int) -> str:
    if right.kind == "land_contract":
        return right.contract_code  # NY/T 2539: CBFBM + "J"
    seq = db.session.execute(text("SELECT nextval('certificate_homestead_seq')")).scalar()
    name = db.session.scalar(text("SELECT name FROM division WHERE code = :c"), {"c": county})
    return f"{codes.PROVINCE_ABBR.get(county[:2], '')}({year}){name or county}不动产权第{seq:07d}号"


def build_content(right: Right, number: str, edition: int, issue_kind: str, token: str,
                  base: str | None, today: dt.date) -> dict:
    """What the certificate certifies, frozen at issue."""
    hh = db.session.scalar(select(Household).where(Household.cbfbm == right.holder_household_code)) \
        if right.holder_household_code else None
    head = hh.head if hh else None
    coholders = [{"name": m.person.name, "relation": m.relation,
                  "id_masked": mask(m.person.id_number)}
                 for m in (hh.current_members if hh else []) if m.is_coholder]
    rows = db.session.execute(text("""
        SELECT p.code, p.name, p.scmj, p.scmjm, p.dklb, p.east, p.south, p.west, p.north,
               ST_AsBinary(ST_Transform(p.geom, p.survey_srid)) AS wkb, rp.contract_area
        FROM land_right_parcel rp JOIN parcel p ON p.uid = rp.parcel_uid AND p.end_lifespan IS NULL
        WHERE rp.right_id = :r ORDER BY p.code"""), {"r": right.id}).all()
    if not rows:
        raise DomainError(NO_PARCELS)
    issuing_party = db.session.scalar(text("SELECT name FROM collective WHERE fbfbm = :f"),
                                      {"f": right.fbfbm}) or right.fbfbm
    svg = plan([from_wkb(r.wkb) for r in rows], [r.code[-5:] if len(r.code) == 19 else
                                                r.code[12:19] for r in rows], size=440,
               css_class="certificate-map")
    return {
        "kind": right.kind, "number": number, "edition": edition, "issue_kind": issue_kind,
        "right_uid": right.uid, "right_version": right.version,
        "holder": {"name": right.holder_name or (hh.name if hh else ""),
                   "id_masked": mask(head.id_number) if head else "",
                   "household_code": right.holder_household_code or "",
                   "address": hh.address if hh else ""},
        "issuing_party": issuing_party, "contract_code": right.contract_code,
        "term_start": right.term_start.isoformat() if right.term_start else None,
        "term_end": right.term_end.isoformat() if right.term_end else None,
        "coholders": coholders,
        "parcels": [{"code": r.code, "name": r.name, "area_m2": str(r.scmj),
                     "area_mu": str(r.scmjm), "dklb": r.dklb, "east": r.east,
                     "south": r.south, "west": r.west, "north": r.north,
                     "contract_area": str(r.contract_area) if r.contract_area else None}
                    for r in rows],
        "total_mu": str(sum(r.scmjm for r in rows)),
        "map_svg": svg,
        "authority": authority(right.fbfbm[:6], right.kind),
        "issued_on": today.isoformat(),
        "verify_url": verify_url(token, base),
    }


def _digest(content: dict) -> str:
    return hashlib.sha256(json.dumps(content, sort_keys=True, ensure_ascii=False)
                          .encode()).hexdigest()


def _make(actor, right: Right, issue_kind: str, number: str | None = None, edition: int = 1,
          replaces: Certificate | None = None, reason: str | None = None,
          campaign_id: int | None = None, base: str | None = None,
          today: dt.date | None = None) -> Certificate:
    if right.kind not in ("land_contract", "homestead"):
        raise DomainError(NOT_CERTIFIABLE, kind=codes.RIGHT_KIND[right.kind])
    if right.status != "current" or right.end_lifespan is not None:
        raise DomainError(NOT_CURRENT)
    today = today or dt.date.today()
    token = secrets.token_urlsafe(18)
    number = number or _number(right, right.fbfbm[:6], today.year)
    content = build_content(right, number, edition, issue_kind, token, base, today)
    cert = Certificate(kind=right.kind, number=number, edition=edition, issue_kind=issue_kind,
                       right_uid=right.uid, right_id=right.id,
                       household_code=right.holder_household_code, campaign_id=campaign_id,
                       token=token, authority=content["authority"], issued_by=_who(actor),
                       issue_reason=reason, replaces_id=replaces.id if replaces else None,
                       content=content, content_sha256=_digest(content))
    db.session.add(cert)
    db.session.flush()
    audit.record(actor, f"certificate.{issue_kind}", "certificate", cert.id,
                 {"number": number, "edition": edition, "right": right.uid,
                  "replaces": replaces.id if replaces else None}, reason)
    return cert


def valid_for(right_uid: int) -> Certificate | None:
    return db.session.scalar(select(Certificate).where(Certificate.right_uid == right_uid,
                                                       Certificate.status == "valid"))


def _current_right(uid: int) -> Right | None:
    return db.session.scalar(select(Right).where(Right.uid == uid, Right.end_lifespan.is_(None)))


def issue(actor, right: Right, campaign_id: int | None = None, base: str | None = None,
          reason: str | None = None, today: dt.date | None = None) -> Certificate:
    """Issue for a registered right: the first edition, or — when an earlier certificate of
    the right was cancelled (an error corrected) and the right is still current — the next
    edition of the same number, chained to the last one (the register's number and edition
    are unique: edition 1 again was the 500 on `uq_certificate_edition`)."""
    guard_text(actor, "certificate", {"reason": reason}, "certificate.refused.text",
               "land_right", right.uid)
    db.session.execute(text("SELECT 1 FROM land_right WHERE id = :i FOR UPDATE"),
                       {"i": right.id})  # one issue of a right at a time
    existing = valid_for(right.uid)
    if existing:
        raise DomainError(ALREADY, number=existing.number)
    if right.kind == "land_contract":
        prior = _last_edition(right.kind, right.contract_code)
    else:
        last = db.session.scalar(select(Certificate).where(Certificate.right_uid == right.uid)
                                 .order_by(Certificate.id.desc()).limit(1))
        prior = _last_edition(last.kind, last.number) if last is not None else None
    if prior is not None and prior.status == "valid":
        raise DomainError(ALREADY, number=prior.number)
    if prior is not None:  # cancelled (or superseded): the next edition of the same number
        return _make(actor, right, "reissue", number=prior.number, edition=prior.edition + 1,
                     replaces=prior, reason=reason or str(_l(
                         "new edition after edition %(e)s was %(status)s", e=prior.edition,
                         status=codes.CERTIFICATE_STATUS[prior.status])),
                     campaign_id=campaign_id, base=base, today=today)
    return _make(actor, right, "first", campaign_id=campaign_id, base=base, reason=reason,
                 today=today)


def _last_edition(kind: str, number: str | None) -> Certificate | None:
    if not number:
        return None
    return db.session.scalar(select(Certificate).where(
        Certificate.kind == kind, Certificate.number == number)
        .order_by(Certificate.edition.desc()).limit(1))


def _end(actor, cert: Certificate, status: str, reason: str, ground: str = "new_edition",
         reference: str | None = None, policy: str = "certificate") -> None:
    if cert.status != "valid":
        raise DomainError(NOT_VALID, number=cert.number,
                          status=codes.CERTIFICATE_STATUS[cert.status])
    if not (reason or "").strip():
        raise DomainError(NEEDS_REASON)
    guard_text(actor, policy, {"reason": reason, "reference": reference},
               "certificate.refused.text", "certificate", cert.id)
    db.session.execute(text("""UPDATE certificate SET status = :s, ended_at = clock_timestamp(),
                               ended_by = :b, end_reason = :r, end_ground = :g,
                               end_reference = :ref WHERE id = :i"""),
                       {"s": status, "b": _who(actor), "r": reason.strip(), "g": ground,
                        "ref": (reference or "").strip() or None, "i": cert.id})
    db.session.refresh(cert)


def _next_edition(actor, cert: Certificate, issue_kind: str, reason: str,
                  base: str | None) -> Certificate:
    right = _current_right(cert.right_uid)
    if right is None or right.status != "current":
        raise DomainError(NOT_CURRENT)
    _end(actor, cert, "superseded", reason)
    return _make(actor, right, issue_kind, number=cert.number, edition=cert.edition + 1,
                 replaces=cert, reason=reason, campaign_id=cert.campaign_id, base=base)


def reissue(actor, cert: Certificate, reason: str, base: str | None = None) -> Certificate:
    """补发: the certificate was lost or destroyed; a new edition, the old one void."""
    return _next_edition(actor, cert, "reissue", reason, base)


def replace(actor, cert: Certificate, reason: str, base: str | None = None) -> Certificate:
    """换发: damaged, or the registered right changed (extension, correction, mutation)."""
    return _next_edition(actor, cert, "replacement", reason, base)


def cancel(actor, cert: Certificate, reason: str, ground: str | None = None,
           reference: str | None = None, _policy: str = "certificate") -> Certificate:
    """注销: only on a ground of the closed list tied to the right's state — the right has
    ended, or an error is corrected (with the correction's reference).  Any other ground,
    and a reason that ties the certificate to settling in town or to giving up a right, is
    refused with the law and recorded."""
    if cert.status != "valid":
        raise DomainError(NOT_VALID, number=cert.number,
                          status=codes.CERTIFICATE_STATUS[cert.status])
    ground = (ground or "").strip()
    if ground not in CANCEL_GROUNDS:
        refuse(actor, DomainError(CANCEL_GROUND, ground=ground or "—"),
               "certificate.cancel.refused", "certificate", cert.id,
               {"ground": ground, "text": (reason or "")[:500]})
    if ground == "right_ended" and _current_right(cert.right_uid) is not None and \
            _current_right(cert.right_uid).status == "current":
        refuse(actor, DomainError(RIGHT_STILL_CURRENT, number=cert.number),
               "certificate.cancel.refused", "certificate", cert.id,
               {"ground": ground, "text": (reason or "")[:500]})
    if ground == "error_corrected" and not (reference or "").strip():
        raise DomainError(NEEDS_REFERENCE)
    _end(actor, cert, "cancelled", reason, ground, reference, _policy)
    audit.record(actor, "certificate.cancel", "certificate", cert.id,
                 {"number": cert.number, "ground": ground, "reference": reference}, reason)
    return cert


def cancel_for_right(actor, right_uid: int, reason: str) -> Certificate | None:
    """The certificate of a right that has just ended on a lawful ground."""
    cert = valid_for(right_uid)
    return cancel(actor, cert, reason, "right_ended",
                  _policy="certificate_right_ended") if cert else None


def out_of_date(cert: Certificate) -> bool:
    """A valid certificate whose right has a newer version needs a replacement (换发)."""
    current = _current_right(cert.right_uid)
    return cert.status == "valid" and current is not None and current.id != cert.right_id


def pdf(cert: Certificate, locale: str = "zh") -> bytes:
    """The certificate's PDF, rendered once per content digest (PDF_CACHE_DIR)."""
    return render.render_pdf(cert.content, locale, current_app.config.get("PDF_CACHE_DIR"))


def by_token(token: str) -> Certificate | None:
    """The certificate a QR code's token names.  A token is unique per county only (0036_citus,
    the county is the distribution column): a token two counties' rows share verifies neither
    — the public page cannot tell which is meant, and must not show one of them at random."""
    found = db.session.scalars(select(Certificate).where(Certificate.token == token)
                               .limit(2)).all()
    return found[0] if len(found) == 1 else None


def campaign_rights(campaign) -> list[Right]:
    return list(db.session.scalars(select(Right).where(
        Right.fbfbm == campaign.fbfbm, Right.kind.in_(("land_contract", "homestead")),
        Right.status == "current", Right.end_lifespan.is_(None))
        .order_by(Right.holder_household_code, Right.kind)))


def issue_for_campaign(actor, campaign, base: str | None = None, progress=None) \
        -> list[Certificate]:
    """Every current right of a registered campaign's group without a valid certificate."""
    if campaign.status != "registered":
        raise DomainError(NOT_REGISTERED, id=campaign.id, status=campaign.status)
    rights = campaign_rights(campaign)
    have = set(db.session.scalars(select(Certificate.right_uid).where(
        Certificate.right_uid.in_([r.uid for r in rights]), Certificate.status == "valid")))
    made = []
    todo = [r for r in rights if r.uid not in have]
    for i, r in enumerate(todo, 1):
        made.append(issue(actor, r, campaign_id=campaign.id, base=base,
                          reason=f"campaign {campaign.id}"))
        if progress and (i % 25 == 0 or i == len(todo)):
            progress(i, 2 * len(todo), f"issued {i} of {len(todo)}")
    return made


def start_batch(actor, campaign, base: str | None = None):
    """Queue the batch issuance of a registered campaign (a background job with progress)."""
    if campaign.status != "registered":
        raise DomainError(NOT_REGISTERED, id=campaign.id, status=campaign.status)
    return jobs.submit("certificates", {"campaign": campaign.id, "actor": _who(actor),
                                        "base_url": base}, actor)


def print_dir() -> Path:
    d = Path(current_app.config["PRINT_DIR"])
    d.mkdir(parents=True, exist_ok=True)
    return d


_pool: ProcessPoolExecutor | None = None


def _render_pool() -> ProcessPoolExecutor:
    """Worker processes for rendering, one per core, started once and kept (spawned, so they
    hold no database connection or app state)."""
    global _pool
    if _pool is None:
        _pool = ProcessPoolExecutor(max_workers=max(1, os.cpu_count() or 1),
                                    mp_context=get_context("spawn"))
    return _pool


PRINT_CHUNK = 25  # certificates per print file


def render_package(certs: list[Certificate], path: Path, progress=None, offset: int = 0,
                   total: int | None = None) -> int:
    """The campaign's print package: a ZIP of print files (PDF, PRINT_CHUNK certificates each,
    rendered in worker processes) and `index.csv` saying which pages hold which certificate.
    Returns the number of print files."""
    import io

    total = total or len(certs)
    chunks = [certs[i:i + PRINT_CHUNK] for i in range(0, len(certs), PRINT_CHUNK)]
    work = [[c.content for c in ch] for ch in chunks]
    results = _render_pool().map(render.render_batch, work) if len(chunks) > 1 else \
        map(render.render_batch, work)
    index = io.StringIO()
    w = csv_writer(index)
    w.writerow(["certificate_id", "kind", "number", "edition", "household_code", "holder",
                "file", "first_page", "last_page", "content_sha256"])
    done = 0
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for n, (ch, (data, ranges)) in enumerate(zip(chunks, results, strict=True), 1):
            name = f"print-{n:04d}.pdf"
            z.writestr(name, data)
            for c, (first, last) in zip(ch, ranges, strict=True):
                w.writerow([c.id, c.kind, c.number, c.edition, c.household_code or "",
                            c.content["holder"]["name"], name, first, last, c.content_sha256])
            done += len(ch)
            if progress:
                progress(offset + done, total, f"rendered {done} of {len(certs)}")
        z.writestr("index.csv", index.getvalue())
    return len(chunks)


def run_campaign_batch(job, campaign, progress) -> dict:
    """Job body (the job itself is app.campaigns.jobs.run_batch): issue a registered campaign's
    certificates, then render its print package."""
    actor = job.params.get("actor") or "system"
    made = issue_for_campaign(actor, campaign, job.params.get("base_url"), progress)
    db.session.commit()  # the register first: the print package can always be made again
    certs = made or list(db.session.scalars(select(Certificate).where(
        Certificate.campaign_id == campaign.id, Certificate.status == "valid")
        .order_by(Certificate.id)))
    path = print_dir() / f"campaign-{campaign.id}-job-{job.id}.zip"
    render_package(certs, path, progress, offset=len(made), total=len(made) + len(certs))
    audit.record(actor, "certificate.batch", "campaign", campaign.id,
                 {"issued": len(made), "rendered": len(certs), "package": path.name})
    return {"issued": len(made), "rendered": len(certs), "package": path.name,
            "campaign": campaign.id}


def mask_code(code: str | None, keep_head: int = 6, keep_tail: int = 4) -> str:
    """140404********0001J: the county and the tail kept, the township, village and group (which
    with the tail name one household) hidden."""
    if not code:
        return ""
    if len(code) <= keep_head + keep_tail:
        return "*" * len(code)
    return code[:keep_head] + "*" * (len(code) - keep_head - keep_tail) + code[-keep_tail:]


def public_particulars(c: Certificate) -> dict:
    """What the public verification page (and its API) shows: enough to match a paper
    certificate (status, edition, masked number and parcel codes, areas), nothing that names the
    household — the certificate number is the household code, so it is masked like a name."""
    return {
        "number": mask_code(c.number),
        "edition": c.edition,
        "kind": c.kind,
        "status": c.status,
        "holder": mask_name(c.content["holder"]["name"]),
        "authority": c.authority,
        "issued_on": c.content.get("issued_on"),
        "parcels": [{"code": mask_code(p["code"], 6, 3), "area_mu": p["area_mu"]}
                    for p in c.content.get("parcels", [])],
    }


def of_household(household_code: str) -> list[Certificate]:
    return list(db.session.scalars(select(Certificate).where(
        Certificate.household_code == household_code).order_by(Certificate.id.desc())))


def register_rows(like: str | None = None, q: str | None = None, status: str | None = None,
                  campaign_id: int | None = None, limit: int = 100,
                  offset: int = 0) -> list[Certificate]:
    """The certificate register by number and edition: within `like`, number or household code
    starting with `q`, of `status`, of a campaign."""
    stmt = select(Certificate).order_by(Certificate.number, Certificate.edition)
    if like:
        stmt = stmt.where(Certificate.household_code.like(like))
    if q:
        stmt = stmt.where(Certificate.number.startswith(q) | Certificate.household_code
                          .startswith(q))
    if status:
        stmt = stmt.where(Certificate.status == status)
    if campaign_id:
        stmt = stmt.where(Certificate.campaign_id == campaign_id)
    return list(db.session.scalars(stmt.limit(limit).offset(offset)))


def successor(cert: Certificate) -> Certificate | None:
    return db.session.scalar(select(Certificate).where(Certificate.replaces_id == cert.id))


def editions(cert: Certificate) -> list[Certificate]:
    return list(db.session.scalars(select(Certificate).where(
        Certificate.kind == cert.kind, Certificate.number == cert.number)
        .order_by(Certificate.edition)))
