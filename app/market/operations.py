"""The transfer-trading market I (农村产权流转交易市场): the rules and every write.

Flow (国办发〔2014〕71号; 山西省农村产权流转交易管理办法（试行）2023; domain.md §8): a household
(or the collective, or the exchange with the household's written mandate) lists → the legal
checks run before review → the exchange operator accepts or returns with reasons → the
announcement runs N working days on the Chinese holiday calendar → applicants register and
lodge the deposit (a double-entry ledger in fen) → at its end: none → announce again (up to a
set number of times) then open negotiation; one → agreement at or above the reserve; two or
more → the method the listing named (auction or tender; trading is the next issue's).

Nothing here asks whether anyone settled in town: a household's rights are its own
(农村土地承包法 art 27; source document item 13)."""
from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from app.access import reaches
from app.audit import operations as audit
from app.certificates import operations as certs
from app.collectives.models import Collective, Membership
from app.errors import DomainError, Rule
from app.extensions import db
from app.grounds import FIELD_LABELS, guard_text
from app.parcels.models import Parcel, RegistrySetting
from app.people import idnumber
from app.people.models import Household, Person
from app.people.operations import same_person
from app.printing import qr_svg, render_document
from app.rights import operations as rights
from app.rights.models import Right

from . import clock, workdays
from .models import (
    COLLECTIVE_KINDS,
    HOUSEHOLD_KINDS,
    METHODS,
    Applicant,
    Application,
    Auction,
    AuctionBidder,
    Award,
    Bid,
    Contract,
    ContractConfirmation,
    Encumbrance,
    EncumbranceConsent,
    LedgerEntry,
    LedgerTxn,
    Listing,
    ListingConsent,
    ListingParcel,
    Mandate,
    PriorityExercise,
    RentInstalment,
    Tender,
    TenderBid,
    TradeCertificate,
)

# Listing states the public sees (the market page, its map and the API).
PUBLIC_STATES = ("announced", "agreement", "competition", "negotiation")

# Legal sources.
ART16 = _l("农村土地承包法 (Rural Land Contracting Law) art 16 (the household's members share "
           "its rights); 农村土地经营权流转管理办法 (2021) art 8")
ART33 = _l("农村土地承包法 (Rural Land Contracting Law) art 33")
ART34 = _l("农村土地承包法 (Rural Land Contracting Law) art 34")
ART36 = _l("农村土地承包法 (Rural Land Contracting Law) art 36; 农村土地经营权流转管理办法 "
           "(2021) art 8 (no organisation may decide a transfer without the contractor's "
           "written mandate)")
ART38_TERM = _l("农村土地承包法 (Rural Land Contracting Law) art 38 (4): the term may not "
                "exceed the remaining contract term")
ART38_USE = _l("农村土地承包法 (Rural Land Contracting Law) art 38 (2): no change of "
               "agricultural use")
ART38_FARM = _l("农村土地承包法 (Rural Land Contracting Law) art 38 (3): the transferee must be "
                "able to farm; county transferee rules (individuals 18–70 with full capacity)")
ART38_PRIORITY = _l("农村土地承包法 (Rural Land Contracting Law) art 38 (5): on equal terms, "
                    "members of the collective have priority")
ART41 = _l("农村土地承包法 (Rural Land Contracting Law) arts 36, 41; 山西省农村产权流转交易管理办法"
           "（试行）2023: one parcel, one transfer at a time")
ART47 = _l("农村土地承包法 (Rural Land Contracting Law) art 47 (mortgage of the management "
           "right); 山西省农村产权流转交易管理办法（试行）2023 (encumbered items need the "
           "creditor's or court's consent)")
ART52 = _l("农村土地承包法 (Rural Land Contracting Law) art 52; 农村集体经济组织法 (collective "
           "assets are disposed of by the members' decision)")
COMPANY = _l("农村土地经营权流转管理办法 (2021) arts 29–31 (county qualification review of "
             "companies and the risk deposit)")
TRADING = _l("国办发〔2014〕71号; 山西省农村产权流转交易管理办法（试行）2023 (listing, review, "
             "announcement, registration and deposit)")
GB11643 = _l("GB 11643-1999 citizen identification number")
GB32100 = _l("GB 32100-2015 unified social credit code")

NOT_HOLDER = Rule("market.lister.not_holder",
                  _l("%(who)s neither holds right %(right)s nor has the household's valid "
                     "written mandate (委托书) to list it."), ART36, 403)
MANDATE_INVALID = Rule("market.lister.mandate",
                       _l("Mandate %(id)s does not cover household %(household)s for the %(agent)s "
                          "on %(day)s."), ART36, 403)
MANDATE_FILE = Rule("market.mandate.file",
                    _l("A mandate is the household's signed written mandate: upload the file."),
                    ART36)
NOT_CURRENT = Rule("market.right.not_current",
                   _l("Only a current land-contract right can be listed."), ART36, 409)
PARCEL_NOT_IN_RIGHT = Rule("market.parcel.not_in_right",
                           _l("Parcel %(parcel)s is not under right %(right)s."), ART36)
NO_PARCELS = Rule("market.parcel.none", _l("Choose at least one parcel."), TRADING)
TERM_EXCEEDS = Rule("market.term.exceeds_contract",
                    _l("The term ends on %(end)s, after the contract right's term (%(contract_end)s)."),
                    ART38_TERM)
TERM_START = Rule("market.term.start",
                  _l("The term cannot start in the past: on or after %(day)s."), TRADING)
NON_AGRICULTURAL = Rule("market.use.non_agricultural",
                        _l("The land must stay in agricultural use (crops, forestry, animal "
                           "husbandry or fishery); '%(use)s' is not."), ART38_USE)
UNDER_MANAGEMENT = Rule("market.parcel.under_management",
                        _l("Parcel %(parcel)s is under the current land management right %(right)s "
                           "until %(until)s."), ART41, 409)
ALREADY_LISTED = Rule("market.parcel.listed",
                      _l("Parcel %(parcel)s is in another live listing (%(other)s) for an "
                         "overlapping period."), ART41, 409)
SWAP_OUTSIDE = Rule("market.swap.outside_collective",
                    _l("A swap or a transfer of the contract right goes only to another household "
                       "of the same collective (%(fbfbm)s); %(other)s is not one."), ART33, 409)
SWAP_CONSENT = Rule("market.swap.issuing_party_consent",
                    _l("A swap or a transfer of the contract right needs the issuing party's "
                       "(发包方) consent: record its reference."), ART34)
ENCUMBERED = Rule("market.encumbered",
                  _l("Parcel %(parcel)s is %(kind)s (%(holder)s, %(reference)s): the listing "
                     "cannot be announced without the creditor's or court's recorded consent."),
                  ART47, 409)
ENCUMBRANCE_UNDECLARED = Rule(
    "market.encumbrance.undeclared",
    _l("The register shows %(kind)s on this right: the listing must say that the land is "
       "mortgaged or seized."), ART47)
CONSENT_MISSING = Rule("market.consent.missing",
                       _l("Every adult co-holder of the household must consent; still missing: "
                          "%(names)s."), ART16, 409)
NOT_COHOLDER = Rule("market.consent.not_coholder",
                    _l("%(name)s is not an adult co-holder of household %(household)s."), ART16,
                    403)
CONSENT_DOCUMENT = Rule("market.consent.document",
                        _l("A consent recorded for someone else needs their signed statement."),
                        ART16)
RESOLUTION = Rule("market.collective.resolution",
                  _l("A collective item is listed only after the members' resolution: give its "
                     "reference."), ART52)
TOO_LONG = Rule("market.text.too_long", _l("%(field)s is longer than %(n)s characters."),
                ART52, 400)
COLLECTIVE_ONLY = Rule("market.collective.officer",
                       _l("Collective items are listed by the collective's officer."), ART52, 403)
ASSET_FIELDS = Rule("market.collective.asset",
                    _l("A collective operating asset needs a description and a valuation."),
                    TRADING)
RESERVE_LAND = Rule("market.collective.parcel",
                    _l("Parcel %(parcel)s is not collective land of %(fbfbm)s without a household."),
                    ART52)
BAD_PRICE = Rule("market.price",
                 _l("The reserve price is in yuan per mu per year, exact to the fen (e.g. "
                    "850.00); '%(value)s' is not."), TRADING)
BAD_METHOD = Rule("market.method", _l("The method for two or more applicants is an online "
                                      "auction or a tender."), TRADING)
BAD_KIND = Rule("market.kind", _l("'%(kind)s' is not a kind of listing."), TRADING)
STATE = Rule("market.state", _l("This listing is %(status)s; that step is not open."), TRADING,
             409)
RETURN_REASON = Rule("market.review.reason",
                     _l("A listing is returned with reasons."), TRADING)
WINDOW = Rule("market.apply.window",
              _l("Applications are taken during the announcement (%(start)s – %(end)s)."),
              TRADING, 409)
BAD_ID = Rule("market.applicant.id_number",
              _l("'%(value)s' is not a valid resident ID number."), GB11643)
BAD_CREDIT = Rule("market.applicant.credit_code",
                  _l("'%(value)s' is not a valid unified social credit code (check character)."),
                  GB32100)
AGE = Rule("market.applicant.age",
           _l("An individual transferee must be 18 to 70 years old; the applicant is %(age)s."),
           ART38_FARM)
CAPACITY = Rule("market.applicant.capacity",
                _l("Describe the applicant's capacity to farm (experience, labour, machinery)."),
                ART38_FARM)
NOT_MEMBER = Rule("market.priority.not_member",
                  _l("Only a member of the collective %(fbfbm)s may register as priority holder."),
                  ART38_PRIORITY)
DUPLICATE = Rule("market.apply.duplicate",
                 _l("This applicant already applied for this listing."), TRADING, 409)
OWN_LISTING = Rule("market.apply.own",
                   _l("A household does not apply for its own listing."), TRADING, 409)
PAYMENT = Rule("market.payment",
               _l("A payment is recorded with its amount in fen (above zero) and the bank's "
                  "reference."), TRADING)
OVERPAID = Rule("market.payment.exceeds",
                _l("%(what)s due is %(due)s fen; %(held)s fen is already held."), TRADING, 409)
NOT_ENDED = Rule("market.announcement.running",
                 _l("The announcement runs until %(end)s."), TRADING, 409)
ENC_FIELDS = Rule("market.encumbrance.fields",
                  _l("An encumbrance is recorded with its kind (mortgage or seizure), the "
                     "creditor or court, its reference and why."), ART47)
ENC_RELEASED = Rule("market.encumbrance.released",
                    _l("This encumbrance was released on %(day)s."), ART47, 409)

USE_LABELS = {"1": _l("crops"), "2": _l("forestry"), "3": _l("animal husbandry"),
              "4": _l("fishery"), "5": _l("non-agricultural")}
KIND_LABELS = {"lease": _l("lease (出租)"), "subcontract": _l("subcontract (转包)"),
               "equity": _l("equity (入股)"), "other": _l("other lawful means"),
               "swap": _l("swap (互换)"), "transfer": _l("transfer of the contract right (转让)"),
               "reserve_land": _l("reserve land (机动地)"),
               "wasteland": _l("four-wastelands use right (四荒)"),
               "asset": _l("collective operating asset")}
KIND_TITLES = {"lease": "出租", "subcontract": "转包", "equity": "入股", "other": "其他方式流转",
               "swap": "互换", "transfer": "转让", "reserve_land": "机动地", "wasteland": "四荒地",
               "asset": "集体经营性资产"}  # stored titles are in the register's language
STATUS_LABELS = {"draft": _l("draft"), "review": _l("under review"),
                 "returned": _l("returned"), "announced": _l("announced"),
                 "agreement": _l("ended: one applicant, ready for agreement"),
                 "competition": _l("ended: two or more applicants, ready for the named method"),
                 "negotiation": _l("ended: no applicant, open negotiation"),
                 "withdrawn": _l("withdrawn")}
METHOD_LABELS = {"auction": _l("online auction"), "tender": _l("tender")}
APPLICANT_LABELS = {"person": _l("individual"), "family_farm": _l("family farm"),
                    "cooperative": _l("farmers' cooperative"), "company": _l("company")}
APPLICATION_LABELS = {"registered": _l("registered, deposit due"),
                      "qualification": _l("county qualification review"),
                      "qualified": _l("qualified"), "refused": _l("refused")}

# County-level defaults (registry_setting `market_<name>:<county>`, else these).
DEFAULTS = {
    "announcement_days": 10,      # working days (domain.md §8: at least 7; default 10)
    "reannounce_max": 1,          # announced again this many times, then open negotiation
    "deposit_percent": 10,        # of the first year's price at the reserve
    "method": "auction",
    "company_review_mu": 100,     # companies above this area go through qualification review
    "risk_deposit_months": 12,    # risk deposit, at most one year's rent
    "min_age": 18,
    "max_age": 70,
    "refund_working_days": 5,     # losers' deposits paid back within this many working days
    "pay_working_days": 3,        # the winner pays the price within this many working days
    "sign_days": 7,               # the contract is signed within this many days of the result
    "priority_minutes": 1440,     # the priority window after the bidding (24 h)
}

# What a county may choose (the settings page and `flask market setting` both check it):
# announcement at least 7 working days (domain.md §8); deposits seen up to "over 30%" (Hainan
# 31%, Nanle ≥ 30%); the risk deposit at most one year's rent; 0 mu: every company is reviewed.
BOUNDS = {"announcement_days": (7, 60), "reannounce_max": (0, 5), "deposit_percent": (0, 50),
          "company_review_mu": (0, 100000), "risk_deposit_months": (0, 12),
          "min_age": (16, 30), "max_age": (50, 100), "refund_working_days": (1, 30),
          "pay_working_days": (1, 30), "sign_days": (1, 60), "priority_minutes": (0, 10080)}
BAD_SETTING = Rule("market.setting", _l("market_%(name)s: %(why)s"), TRADING)

_who = audit.actor_name
LEDGER_BANK = "bank"  # the exchange's deposit account (an asset: debit positive)


def setting(name: str, county: str):
    row = db.session.get(RegistrySetting, f"market_{name}:{county}")
    default = DEFAULTS[name]
    if row is None:
        return default
    return type(default)(row.value)


def check_setting(name: str, value) -> str:
    """The value as stored, or DomainError (out of BOUNDS, not a whole number, no such method)."""
    if name == "method":
        if str(value) not in METHODS:
            raise DomainError(BAD_SETTING, name=name, why=", ".join(METHODS))
        return str(value)
    try:
        n = int(str(value).strip())
    except ValueError:
        raise DomainError(BAD_SETTING, name=name, why=_l("a whole number")) from None
    lo, hi = BOUNDS[name]
    if not lo <= n <= hi:
        raise DomainError(BAD_SETTING, name=name,
                          why=_l("between %(lo)s and %(hi)s", lo=lo, hi=hi))
    return str(n)


def set_setting(actor, name: str, county: str, value, reason: str | None = None) -> None:
    if name not in DEFAULTS:
        raise KeyError(name)
    value = check_setting(name, value)  # the CLI wrote any value (1 announcement day, 500 %)
    key = f"market_{name}:{county}"
    row = db.session.get(RegistrySetting, key)
    old = row.value if row is not None else None
    if row is None:
        row = RegistrySetting(key=key, value=value, note="transfer-trading market")
        db.session.add(row)
    row.value = value
    db.session.flush()
    audit.record(actor, "market.setting", "registry_setting", key, {"value": [old, value]},
                 reason)


def parse_price(value) -> Decimal:
    """Yuan exact to the fen: a decimal string with at most two places, never a float."""
    if isinstance(value, float):
        raise DomainError(BAD_PRICE, value=value)
    try:
        d = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise DomainError(BAD_PRICE, value=value) from None
    if not d.is_finite() or d < 0 or d != d.quantize(Decimal("0.01")):
        raise DomainError(BAD_PRICE, value=value)
    return d.quantize(Decimal("0.01"))


MAX_FEN = 2 ** 63 - 1  # the database's bigint


def fen_ok(value) -> bool:
    """An amount in fen: a true int (never a bool, float or string), above 0, within bigint."""
    return type(value) is int and 0 < value <= MAX_FEN


MAX_MINUTES = 60 * 24 * 366  # no phase of an auction or a tender lasts (or waits) a year


def minutes_ok(*values, positive: bool = False) -> bool:
    """Minutes (fractions allowed, never a bool or a string), 0 or more (above 0 when
    `positive`) and within a year."""
    return all(type(v) in (int, float) and (v > 0 if positive else v >= 0)
               and v <= MAX_MINUTES for v in values)


def yuan_to_fen(value) -> int:
    return int(parse_price(value) * 100)


def first_year_fen(listing: Listing) -> int:
    """The first year's price at the reserve: yuan/mu/year × area; an operating asset (no
    parcels, no area) is priced per year for the whole item."""
    if listing.kind == "asset":
        return int((listing.reserve_price * 100).quantize(Decimal(1), ROUND_HALF_UP))
    return int((listing.reserve_price * listing.area_mu * 100).quantize(Decimal(1), ROUND_HALF_UP))


# ---------------------------------------------------------------------------- mandates


def upload_mandate(actor, household_code: str, agent: str, agent_name: str, scope: str,
                   valid_from: dt.date, valid_until: dt.date, filename: str,
                   content: bytes) -> Mandate:
    """Keep the household's written mandate — the file itself and its hash."""
    if not content or not filename:
        raise DomainError(MANDATE_FILE)
    if db.session.scalar(select(Household.id).where(Household.cbfbm == household_code)) is None:
        raise DomainError(NOT_HOLDER, who=_who(actor), right=household_code)
    m = Mandate(household_code=household_code, agent=agent, agent_name=agent_name.strip(),
                scope=scope.strip(), valid_from=valid_from, valid_until=valid_until,
                filename=filename[:200], content=content,
                sha256=hashlib.sha256(content).hexdigest(), uploaded_by=_who(actor))
    db.session.add(m)
    db.session.flush()
    audit.record(actor, "market.mandate", "market_mandate", m.id,
                 {"household": household_code, "agent": agent, "sha256": m.sha256,
                  "valid": [valid_from, valid_until]})
    return m


def _agent_of(actor) -> str | None:
    role = getattr(actor, "role", None)
    return {"collective_officer": "collective", "exchange_operator": "exchange",
            "admin": "exchange"}.get(role)


def _check_lister(actor, right: Right, mandate: Mandate | None, day: dt.date) -> tuple[str, int | None]:
    """('own', None) for the household itself, (agent, mandate id) for an agent with a valid
    mandate; anything else is refused (2021 办法 art 8)."""
    if getattr(actor, "role", None) == "farmer":
        if actor.household_code and actor.household_code == right.holder_household_code:
            return "own", None
        raise DomainError(NOT_HOLDER, who=_who(actor), right=right.contract_code or right.uid)
    agent = _agent_of(actor)
    if agent is None or mandate is None:
        raise DomainError(NOT_HOLDER, who=_who(actor), right=right.contract_code or right.uid)
    if (mandate.household_code != right.holder_household_code or mandate.agent != agent
            or not mandate.valid_from <= day <= mandate.valid_until):
        raise DomainError(MANDATE_INVALID, id=mandate.id, household=right.holder_household_code,
                          agent=agent, day=day)
    return agent, mandate.id


# ---------------------------------------------------------------------------- listings


def current_contract(uid: int) -> Right | None:
    return db.session.scalar(select(Right).where(Right.uid == uid, Right.end_lifespan.is_(None)))


def _parcels(codes: list[str]) -> list[Parcel]:
    codes = [c.strip() for c in codes if c and c.strip()]
    if not codes:
        raise DomainError(NO_PARCELS)
    rows = db.session.scalars(select(Parcel).where(Parcel.code.in_(codes),
                                                   Parcel.end_lifespan.is_(None))).all()
    found = {p.code for p in rows}
    for c in codes:
        if c not in found:
            raise DomainError(PARCEL_NOT_IN_RIGHT, parcel=c, right="—")
    return sorted(rows, key=lambda p: p.code)


def _terms(listing_fields: dict, county: str) -> dict:
    method = listing_fields.get("method") or setting("method", county)
    if method not in METHODS:
        raise DomainError(BAD_METHOD)
    return {"method": method,
            "announcement_days": int(listing_fields.get("announcement_days")
                                     or setting("announcement_days", county)),
            "reannounce_max": int(listing_fields.get("reannounce_max")
                                  if listing_fields.get("reannounce_max") not in (None, "")
                                  else setting("reannounce_max", county))}


def _guard_market_text(actor, fields: dict, obj_type: str = "market_listing", obj_id=None) -> None:
    """Free text of a listing, an applicant or a plan through the rights guard's detector
    (market policy: no land-for-hukou or land-for-anything trade written as a term)."""
    for k in ("title", "payment_schedule", "resolution_ref", "issuing_party_consent_ref"):
        if len(str(fields.get(k) or "").strip()) > 200:
            raise DomainError(TOO_LONG, field=FIELD_LABELS.get(k, k), n=200)
    guard_text(actor, "market", {k: v for k, v in fields.items() if v not in (None, "")},
               "market.refused.text", obj_type, obj_id)


def create_listing(actor, right: Right, kind: str, parcel_codes: list[str],
                   term_start: dt.date, term_end: dt.date, land_use: str, reserve_price,
                   payment_schedule: str, retransfer_allowed: bool = False,
                   transferee_conditions: str | None = None, deposit_yuan=None,
                   method: str | None = None, announcement_days: int | None = None,
                   reannounce_max: int | None = None, mortgaged: bool = False,
                   seized: bool = False, use_description: str | None = None,
                   mandate: Mandate | None = None, swap_household_code: str | None = None,
                   issuing_party_consent_ref: str | None = None,
                   today: dt.date | None = None) -> Listing:
    """A draft listing of (some or all) parcels of a household's current land-contract right.
    The legal checks run when it is submitted for review (`submit`)."""
    today = today or clock.today()
    if kind not in HOUSEHOLD_KINDS:
        raise DomainError(BAD_KIND, kind=kind)
    if right is None or right.kind != "land_contract" or right.status != "current" \
            or right.end_lifespan is not None:
        raise DomainError(NOT_CURRENT)
    via, mandate_id = _check_lister(actor, right, mandate, today)
    _check_use(land_use)
    _guard_market_text(actor, {"transferee_conditions": transferee_conditions,
                               "use_description": use_description,
                               "payment_schedule": payment_schedule,
                               "issuing_party_consent_ref": issuing_party_consent_ref})
    in_right = {rp.parcel_uid for rp in right.parcels}
    parcels = _parcels(parcel_codes)
    for p in parcels:
        if p.uid not in in_right:
            raise DomainError(PARCEL_NOT_IN_RIGHT, parcel=p.code, right=right.contract_code)
    county = right.fbfbm[:6]
    price = parse_price(reserve_price)
    area = sum((p.scmjm for p in parcels), Decimal("0.00"))
    listing = Listing(
        kind=kind, item_class="household",
        title="",
        right_uid=right.uid, household_code=right.holder_household_code, fbfbm=right.fbfbm,
        county_code=county, township_code=right.fbfbm[:9], listed_by=_who(actor),
        listed_via=via, mandate_id=mandate_id, swap_household_code=swap_household_code or None,
        issuing_party_consent_ref=(issuing_party_consent_ref or "").strip() or None,
        term_start=term_start, term_end=term_end, land_use=str(land_use),
        use_description=use_description, area_mu=area, reserve_price=price,
        payment_schedule=(payment_schedule or "").strip() or "annual",
        retransfer_allowed=bool(retransfer_allowed), transferee_conditions=transferee_conditions,
        deposit_fen=0, mortgaged=bool(mortgaged), seized=bool(seized), status="draft",
        **_terms({"method": method, "announcement_days": announcement_days,
                  "reannounce_max": reannounce_max}, county))
    if kind in ("swap", "transfer") and listing.issuing_party_consent_ref is None:
        raise DomainError(SWAP_CONSENT)
    listing.title = f"{_village_name(right.fbfbm)} · {KIND_TITLES[kind]} · {area} 亩"
    listing.deposit_fen = (yuan_to_fen(deposit_yuan) if deposit_yuan not in (None, "") else
                           first_year_fen(listing) * setting("deposit_percent", county) // 100)
    db.session.add(listing)
    db.session.flush()
    for p in parcels:
        db.session.add(ListingParcel(listing_id=listing.id, parcel_uid=p.uid, parcel_code=p.code,
                                     area_mu=p.scmjm, term_start=term_start, term_end=term_end))
    db.session.flush()
    audit.record(actor, "market.list", "market_listing", listing.id,
                 {"kind": kind, "right": right.uid, "via": via, "mandate": mandate_id,
                  "parcels": [p.code for p in parcels], "term": [term_start, term_end],
                  "reserve_price": str(price), "deposit_fen": listing.deposit_fen})
    # The farmer who lists consents by listing (an authenticated act of their own).
    # (the account may name the farmer's row of another county: docs/scaling.md §3)
    own = next((p for p in adult_coholders(listing, today)
                if same_person(p.id, actor.person_id)), None) if via == "own" else None
    if own is not None:
        _add_consent(actor, listing, own.id, "online", None)
    return listing


def _village_name(fbfbm: str) -> str:
    c = db.session.scalar(select(Collective).where(Collective.fbfbm == fbfbm))
    return c.name if c else fbfbm


def create_collective_listing(actor, fbfbm: str, kind: str, resolution_ref: str,
                              term_start: dt.date, term_end: dt.date, land_use: str,
                              reserve_price, payment_schedule: str,
                              parcel_codes: list[str] | None = None,
                              asset_description: str | None = None, asset_valuation=None,
                              title: str | None = None, retransfer_allowed: bool = False,
                              transferee_conditions: str | None = None, deposit_yuan=None,
                              method: str | None = None, announcement_days: int | None = None,
                              reannounce_max: int | None = None,
                              use_description: str | None = None) -> Listing:
    """Reserve land (机动地), four-wastelands use rights (四荒), collective operating assets
    (non-spatial), listed by the collective's officer after the members' resolution."""
    if kind not in COLLECTIVE_KINDS:
        raise DomainError(BAD_KIND, kind=kind)
    role = getattr(actor, "role", None)
    if role not in ("collective_officer", "admin") or (
            role == "collective_officer" and not reaches(actor.jurisdiction_code, fbfbm)):
        raise DomainError(COLLECTIVE_ONLY)
    if not (resolution_ref or "").strip():
        raise DomainError(RESOLUTION)
    _check_use(land_use)
    _guard_market_text(actor, {"title": title, "resolution_ref": resolution_ref,
                               "transferee_conditions": transferee_conditions,
                               "use_description": use_description,
                               "asset_description": asset_description,
                               "payment_schedule": payment_schedule})
    coll = db.session.scalar(select(Collective).where(Collective.fbfbm == fbfbm))
    parcels = []
    if kind == "asset":
        if not (asset_description or "").strip() or asset_valuation in (None, ""):
            raise DomainError(ASSET_FIELDS)
    else:
        parcels = _parcels(parcel_codes or [])
        for p in parcels:
            if p.collective_id != coll.id or p.household_code:
                raise DomainError(RESERVE_LAND, parcel=p.code, fbfbm=fbfbm)
    county = fbfbm[:6]
    price = parse_price(reserve_price)
    area = sum((p.scmjm for p in parcels), Decimal("0.00"))
    listing = Listing(
        kind=kind, item_class="collective",
        title=title or f"{coll.name} · {KIND_TITLES[kind]}" + (f" · {area} 亩" if parcels else ""),
        fbfbm=fbfbm, county_code=county, township_code=fbfbm[:9], listed_by=_who(actor),
        listed_via="collective", resolution_ref=resolution_ref.strip(), term_start=term_start,
        term_end=term_end, land_use=str(land_use), use_description=use_description,
        area_mu=area, reserve_price=price, payment_schedule=payment_schedule or "annual",
        retransfer_allowed=bool(retransfer_allowed), transferee_conditions=transferee_conditions,
        deposit_fen=0, asset_description=asset_description,
        asset_valuation=parse_price(asset_valuation) if asset_valuation not in (None, "") else None,
        status="draft", **_terms({"method": method, "announcement_days": announcement_days,
                                  "reannounce_max": reannounce_max}, county))
    base = first_year_fen(listing) if parcels else int(price * 100)
    listing.deposit_fen = (yuan_to_fen(deposit_yuan) if deposit_yuan not in (None, "") else
                           base * setting("deposit_percent", county) // 100)
    db.session.add(listing)
    db.session.flush()
    for p in parcels:
        db.session.add(ListingParcel(listing_id=listing.id, parcel_uid=p.uid, parcel_code=p.code,
                                     area_mu=p.scmjm, term_start=term_start, term_end=term_end))
    db.session.flush()
    audit.record(actor, "market.list", "market_listing", listing.id,
                 {"kind": kind, "collective": fbfbm, "resolution": resolution_ref,
                  "parcels": [p.code for p in parcels], "reserve_price": str(price)})
    return listing


# ---------------------------------------------------------------------------- consents


def adult_coholders(listing: Listing, today: dt.date | None = None) -> list[Person]:
    if listing.item_class != "household":
        return []
    today = today or clock.today()
    hh = db.session.scalar(select(Household).where(Household.cbfbm == listing.household_code))
    out = []
    for m in hh.current_members if hh else []:
        b = m.person.birth_date
        age = today.year - b.year - ((today.month, today.day) < (b.month, b.day))
        if m.is_coholder and age >= 18:
            out.append(m.person)
    return out


def missing_consents(listing: Listing, today: dt.date | None = None) -> list[Person]:
    have = set(db.session.scalars(select(ListingConsent.person_id).where(
        ListingConsent.listing_id == listing.id)))
    return [p for p in adult_coholders(listing, today) if p.id not in have]


def _add_consent(actor, listing, person_id, how, sha) -> ListingConsent:
    c = ListingConsent(listing_id=listing.id, person_id=person_id, how=how, document_sha256=sha,
                       recorded_by=_who(actor))
    db.session.add(c)
    db.session.flush()
    audit.record(actor, "market.consent", "market_listing", listing.id,
                 {"person": person_id, "how": how, "document_sha256": sha})
    return c


def consent(actor, listing: Listing, person: Person, document: bytes | None = None,
            today: dt.date | None = None) -> ListingConsent:
    """An adult co-holder's consent: online by their own account, or their signed statement
    uploaded by the lister or staff."""
    if listing.status not in ("draft", "returned", "review"):
        raise DomainError(STATE, status=STATUS_LABELS[listing.status])
    # the co-holder's row in the household's county, whichever row of them was named
    row = next((p for p in adult_coholders(listing, today) if same_person(p.id, person.id)), None)
    if row is None:
        raise DomainError(NOT_COHOLDER, name=person.name, household=listing.household_code)
    person = row
    own = same_person(getattr(actor, "person_id", None), person.id)
    if not own and not document:
        raise DomainError(CONSENT_DOCUMENT)
    existing = db.session.scalar(select(ListingConsent).where(
        ListingConsent.listing_id == listing.id, ListingConsent.person_id == person.id))
    if existing:
        return existing
    return _add_consent(actor, listing, person.id, "online" if own and not document else "document",
                        hashlib.sha256(document).hexdigest() if document else None)


# ---------------------------------------------------------------------------- encumbrances


def record_encumbrance(actor, right: Right, kind: str, holder: str, reference: str,
                       reason: str) -> Encumbrance:
    if kind not in ("mortgage", "seizure") or not all(
            (x or "").strip() for x in (holder, reference, reason)):
        raise DomainError(ENC_FIELDS)
    e = Encumbrance(right_uid=right.uid, kind=kind, holder=holder.strip(),
                    reference=reference.strip(), reason=reason.strip(), recorded_by=_who(actor))
    db.session.add(e)
    db.session.flush()
    audit.record(actor, "right.encumbrance", "land_right", right.uid,
                 {"encumbrance": e.id, "kind": kind, "holder": holder, "reference": reference},
                 reason)
    return e


def release_encumbrance(actor, e: Encumbrance, reason: str, day: dt.date | None = None) -> None:
    if e.released_on:
        raise DomainError(ENC_RELEASED, day=e.released_on)
    if not (reason or "").strip():
        raise DomainError(ENC_FIELDS)
    e.released_on, e.released_by, e.release_reason = day or clock.today(), _who(actor), reason
    db.session.flush()
    audit.record(actor, "right.encumbrance.release", "land_right", e.right_uid,
                 {"encumbrance": e.id}, reason)


def encumbrances(right_uid: int) -> list[Encumbrance]:
    return list(db.session.scalars(select(Encumbrance).where(
        Encumbrance.right_uid == right_uid, Encumbrance.released_on.is_(None))
        .order_by(Encumbrance.id)))


def record_encumbrance_consent(actor, listing: Listing, e: Encumbrance,
                               reference: str) -> EncumbranceConsent:
    if not (reference or "").strip():
        raise DomainError(ENC_FIELDS)
    c = EncumbranceConsent(listing_id=listing.id, encumbrance_id=e.id,
                           reference=reference.strip(), recorded_by=_who(actor))
    db.session.add(c)
    db.session.flush()
    audit.record(actor, "market.encumbrance_consent", "market_listing", listing.id,
                 {"encumbrance": e.id, "reference": reference})
    return c


# ---------------------------------------------------------------------------- legal checks


def _check_use(land_use) -> None:
    if str(land_use) not in ("1", "2", "3", "4"):
        raise DomainError(NON_AGRICULTURAL, use=USE_LABELS.get(str(land_use), land_use))


def legal_checks(listing: Listing, today: dt.date | None = None,
                 for_announcement: bool = False) -> None:
    """Every check before review; each refusal names its rule and article."""
    today = today or clock.today()
    _check_use(listing.land_use)
    if listing.term_start < today:
        raise DomainError(TERM_START, day=today)
    if listing.item_class == "collective":
        if not (listing.resolution_ref or "").strip():
            raise DomainError(RESOLUTION)
        _overlaps(listing)
        return
    right = current_contract(listing.right_uid)
    if right is None or right.status != "current" or right.kind != "land_contract":
        raise DomainError(NOT_CURRENT)
    if listing.listed_via != "own":
        m = db.session.get(Mandate, listing.mandate_id) if listing.mandate_id else None
        if m is None or m.household_code != listing.household_code or not (
                m.valid_from <= today <= m.valid_until):
            raise DomainError(MANDATE_INVALID, id=listing.mandate_id,
                              household=listing.household_code, agent=listing.listed_via, day=today)
    in_right = {rp.parcel_uid for rp in right.parcels}
    for lp in listing.parcels:
        if lp.parcel_uid not in in_right:
            raise DomainError(PARCEL_NOT_IN_RIGHT, parcel=lp.parcel_code, right=right.contract_code)
    if right.term_end and listing.term_end > right.term_end:
        raise DomainError(TERM_EXCEEDS, end=listing.term_end, contract_end=right.term_end)
    if listing.kind in ("swap", "transfer"):
        other = listing.swap_household_code or "—"
        if not listing.swap_household_code or listing.swap_household_code[:14] != right.fbfbm \
                or db.session.scalar(select(Household.id).where(
                    Household.cbfbm == listing.swap_household_code)) is None \
                or listing.swap_household_code == listing.household_code:
            raise DomainError(SWAP_OUTSIDE, fbfbm=right.fbfbm, other=other)
        if not (listing.issuing_party_consent_ref or "").strip():
            raise DomainError(SWAP_CONSENT)
    _overlaps(listing)
    missing = missing_consents(listing, today)
    if missing:
        raise DomainError(CONSENT_MISSING, names="、".join(p.name for p in missing))
    enc = encumbrances(right.uid)
    if enc and not (listing.mortgaged or listing.seized):
        raise DomainError(ENCUMBRANCE_UNDECLARED,
                          kind="、".join(str(ENC_LABELS[e.kind]) for e in enc))
    if for_announcement:
        consented = set(db.session.scalars(select(EncumbranceConsent.encumbrance_id).where(
            EncumbranceConsent.listing_id == listing.id)))
        for e in enc:
            if e.id not in consented:
                raise DomainError(ENCUMBERED, parcel=", ".join(
                    lp.parcel_code for lp in listing.parcels), kind=ENC_LABELS[e.kind],
                    holder=e.holder, reference=e.reference)


ENC_LABELS = {"mortgage": _l("mortgaged"), "seizure": _l("seized")}


def _overlaps(listing: Listing) -> None:
    uids = [lp.parcel_uid for lp in listing.parcels]
    if not uids:
        if listing.kind != "asset":
            raise DomainError(NO_PARCELS)
        return
    row = db.session.execute(text("""
        SELECT rp.parcel_code, coalesce(r.contract_code, r.holder_name, r.uid::text) AS r,
               r.term_end FROM land_right r JOIN land_right_parcel rp ON rp.right_id = r.id
        WHERE r.kind = 'management' AND r.status = 'current' AND r.end_lifespan IS NULL
          AND rp.parcel_uid = ANY(:u)
          AND daterange(r.term_start, r.term_end, '[]') && daterange(:s, :e, '[]')
        LIMIT 1"""), {"u": uids, "s": listing.term_start, "e": listing.term_end}).first()
    if row:
        raise DomainError(UNDER_MANAGEMENT, parcel=row[0], right=row[1], until=row[2])
    row = db.session.execute(text("""
        SELECT lp.parcel_code, lp.listing_id FROM market_listing_parcel lp
        WHERE lp.live AND lp.listing_id <> :l AND lp.parcel_uid = ANY(:u)
          AND daterange(lp.term_start, lp.term_end, '[]') && daterange(:s, :e, '[]')
        LIMIT 1"""), {"l": listing.id, "u": uids, "s": listing.term_start,
                      "e": listing.term_end}).first()
    if row:
        raise DomainError(ALREADY_LISTED, parcel=row[0], other=row[1])


def _set_status(listing: Listing, status: str) -> None:
    """Change the status; the database's exclusion constraint has the last word on overlaps."""
    try:
        with db.session.begin_nested():
            listing.status = status
            db.session.flush()
    except IntegrityError as exc:
        if "market_listing_parcel_no_overlap" not in str(exc.orig):
            raise
        db.session.refresh(listing)
        raise DomainError(ALREADY_LISTED, parcel=", ".join(
            lp.parcel_code for lp in listing.parcels), other="—") from None


def submit(actor, listing: Listing, today: dt.date | None = None) -> Listing:
    """Run the legal checks and put the listing in the exchange's review queue."""
    if listing.status not in ("draft", "returned"):
        raise DomainError(STATE, status=STATUS_LABELS[listing.status])
    legal_checks(listing, today)
    _set_status(listing, "review")
    audit.record(actor, "market.submit", "market_listing", listing.id, {})
    return listing


def withdraw(actor, listing: Listing) -> Listing:
    if listing.status not in ("draft", "returned", "review"):
        raise DomainError(STATE, status=STATUS_LABELS[listing.status])
    _set_status(listing, "withdrawn")
    audit.record(actor, "market.withdraw", "market_listing", listing.id, {})
    return listing


def review(actor, listing: Listing, accept: bool, reasons: str | None = None,
           today: dt.date | None = None) -> Listing:
    """The exchange operator accepts (the announcement starts) or returns with reasons."""
    today = today or clock.today()
    if listing.status != "review":
        raise DomainError(STATE, status=STATUS_LABELS[listing.status])
    if not accept:
        if not (reasons or "").strip():
            raise DomainError(RETURN_REASON)
        listing.review_note, listing.reviewed_by = reasons.strip(), _who(actor)
        _set_status(listing, "returned")
        audit.record(actor, "market.return", "market_listing", listing.id, {}, reasons)
        return listing
    legal_checks(listing, today, for_announcement=True)
    listing.review_note, listing.reviewed_by = (reasons or "").strip() or None, _who(actor)
    _announce(listing, today)
    audit.record(actor, "market.announce", "market_listing", listing.id,
                 {"from": listing.announced_on, "until": listing.announcement_ends_on,
                  "working_days": listing.announcement_days, "calendar": listing.calendar_note})
    return listing


def _announce(listing: Listing, today: dt.date) -> None:
    w = workdays.announcement_window(today, listing.announcement_days)
    listing.announced_on, listing.announcement_ends_on = w.start, w.end
    listing.calendar_note = (
        "chinesecalendar (State Council calendar)" if not w.estimated else
        "estimated for " + ", ".join(map(str, w.estimated_years)) +
        " (holidays package; State Council calendar not yet published): check when it is")
    _set_status(listing, "announced")


def qualified_count(listing: Listing) -> int:
    return sum(1 for a in listing.applications if a.status == "qualified")


def close_announcement(actor, listing: Listing, today: dt.date | None = None) -> Listing:
    """At the end of the announcement: none → again (up to the set number), then negotiation;
    one → agreement at or above the reserve; two or more → the listing's method."""
    today = today or clock.today()
    if listing.status != "announced":
        raise DomainError(STATE, status=STATUS_LABELS[listing.status])
    if today <= listing.announcement_ends_on:
        raise DomainError(NOT_ENDED, end=listing.announcement_ends_on)
    n = qualified_count(listing)
    if n == 0 and listing.reannounce_count < listing.reannounce_max:
        listing.reannounce_count += 1
        _announce(listing, today)
        db.session.flush()
        audit.record(actor, "market.reannounce", "market_listing", listing.id,
                     {"round": listing.reannounce_count, "until": listing.announcement_ends_on})
        return listing
    status = "negotiation" if n == 0 else "agreement" if n == 1 else "competition"
    listing.ended_on = today
    _set_status(listing, status)
    audit.record(actor, "market.announcement_end", "market_listing", listing.id,
                 {"qualified": n, "status": status})
    return listing


def close_due(actor, today: dt.date | None = None) -> list[Listing]:
    today = today or clock.today()
    due = db.session.scalars(select(Listing).where(
        Listing.status == "announced", Listing.announcement_ends_on < today)
        .order_by(Listing.id)).all()
    return [close_announcement(actor, x, today) for x in due]


# ---------------------------------------------------------------------------- applicants


def check_credit_code(code: str) -> str:
    """GB 32100-2015: 18 characters from 0-9 and A–Y without I, O, Z, S, V; the last is
    31 − (Σ value × weight mod 31), mod 31, with weights 3^(i) mod 31."""
    c = (code or "").strip().upper()
    chars = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    if len(c) != 18 or any(ch not in chars for ch in c):
        raise DomainError(BAD_CREDIT, value=code)
    s = sum(chars.index(ch) * pow(3, i, 31) for i, ch in enumerate(c[:17]))
    if chars[(31 - s % 31) % 31] != c[17]:
        raise DomainError(BAD_CREDIT, value=code)
    return c


def register_applicant(actor, kind: str, name: str, phone: str, farming_capacity: str,
                       id_number: str | None = None, credit_code: str | None = None,
                       contact_name: str | None = None) -> tuple[Applicant, str]:
    """An intending transferee; returns it and the key to its own page (shown once)."""
    if kind not in ("person", "family_farm", "cooperative", "company"):
        raise DomainError(BAD_KIND, kind=kind)
    if not (farming_capacity or "").strip():
        raise DomainError(CAPACITY)
    _guard_market_text(actor, {"farming_capacity": farming_capacity}, "market_applicant")
    idn = code = None
    if kind == "person":
        try:
            idn = idnumber.parse(id_number or "").number
        except idnumber.IdNumberError:
            raise DomainError(BAD_ID, value=id_number) from None
    else:
        code = check_credit_code(credit_code)
    key = secrets.token_urlsafe(24)
    a = Applicant(kind=kind, name=name.strip(), id_number=idn, credit_code=code,
                  contact_name=contact_name, phone=(phone or "").strip(),
                  farming_capacity=farming_capacity.strip(),
                  key_sha256=hashlib.sha256(key.encode()).hexdigest())
    db.session.add(a)
    db.session.flush()
    audit.record(actor, "market.applicant", "market_applicant", a.id,
                 {"kind": kind, "id_number": idnumber.mask(idn) if idn else None,
                  "credit_code": code})
    return a, key


def applicant_by_key(key: str) -> Applicant | None:
    return db.session.scalar(select(Applicant).where(
        Applicant.key_sha256 == hashlib.sha256((key or "").encode()).hexdigest()))


def _age(birth: dt.date, day: dt.date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def apply(actor, listing: Listing, applicant: Applicant, priority: bool = False,
          today: dt.date | None = None) -> Application:
    """Register for a listing during its announcement."""
    today = today or clock.today()
    # From acceptance (announced) to the last working day of the window.
    if listing.status != "announced" or today > listing.announcement_ends_on:
        raise DomainError(WINDOW, start=listing.announced_on or "—",
                          end=listing.announcement_ends_on or "—")
    if db.session.scalar(select(Application.id).where(
            Application.listing_id == listing.id, Application.applicant_id == applicant.id)):
        raise DomainError(DUPLICATE)
    member = None
    if applicant.kind == "person":
        info = idnumber.parse(applicant.id_number)
        age = _age(info.birth_date, today)
        county = listing.county_code
        if not setting("min_age", county) <= age <= setting("max_age", county):
            raise DomainError(AGE, age=age)
        # every county's row of the applicant (one per county: docs/scaling.md §3)
        rows = list(db.session.scalars(select(Person.id).where(
            Person.id_number == applicant.id_number).order_by(Person.id)))
        if rows and listing.household_code and db.session.scalar(text(
                "SELECT 1 FROM household_member hm JOIN household h ON h.id = hm.household_id "
                "WHERE hm.person_id = ANY(:p) AND hm.left_on IS NULL AND h.cbfbm = :h"),
                {"p": rows, "h": listing.household_code}):
            raise DomainError(OWN_LISTING)
        mid = db.session.scalar(
            select(Membership.person_id).join(Collective, Collective.id == Membership.collective_id)
            .where(Membership.person_id.in_(rows or [0]), Membership.status == "active",
                   Collective.fbfbm == listing.fbfbm).limit(1))
        if mid is not None:
            member = db.session.get(Person, mid)
    renewal = _renewal_contract(listing, applicant) if priority and member is None else None
    if priority and member is None and renewal is None:
        raise DomainError(NOT_MEMBER, fbfbm=listing.fbfbm)
    needs_review = risk = 0
    if applicant.kind == "company" and listing.area_mu > setting("company_review_mu",
                                                                 listing.county_code):
        needs_review = 1
        months = setting("risk_deposit_months", listing.county_code)
        risk = min(first_year_fen(listing), first_year_fen(listing) * months // 12)
    a = Application(listing_id=listing.id, applicant_id=applicant.id, status="registered",
                    priority_holder=bool(priority), member_person_id=member.id if member else None,
                    renewal_contract_id=renewal,
                    needs_review=bool(needs_review), risk_deposit_fen=risk, registered_on=today)
    db.session.add(a)
    db.session.flush()
    _advance(a)
    audit.record(actor, "market.apply", "market_application", a.id,
                 {"listing": listing.id, "applicant": applicant.id, "priority": bool(priority),
                  "needs_review": bool(needs_review), "risk_deposit_fen": risk})
    return a


def _renewal_contract(listing: Listing, applicant: Applicant) -> int | None:
    """The filed contract over (some of) these parcels whose transferee is this applicant (same
    ID number or credit code) and whose term ends before the new term starts: its transferee
    renews on equal terms like a priority holder (农村土地经营权流转管理办法 2021 art 10)."""
    if not listing.parcels:
        return None
    return db.session.scalar(text("""
        SELECT c.id FROM market_contract c
        JOIN market_application pa ON pa.id = c.transferee_application_id
        JOIN market_applicant pp ON pp.id = pa.applicant_id
        JOIN market_listing_parcel old ON old.listing_id = c.listing_id
        WHERE c.status = 'filed' AND c.term_end < :start
          AND old.parcel_uid = ANY(:uids)
          AND ((pp.id_number IS NOT NULL AND pp.id_number = :idn)
               OR (pp.credit_code IS NOT NULL AND pp.credit_code = :cc))
        ORDER BY c.term_end DESC LIMIT 1"""),
        {"start": listing.term_start, "uids": [lp.parcel_uid for lp in listing.parcels],
         "idn": applicant.id_number, "cc": applicant.credit_code})


def qualify(actor, a: Application, ok: bool, note: str) -> Application:
    """The county's qualification review of a company applicant (2021 办法)."""
    if not a.needs_review or a.status not in ("qualification", "registered"):
        raise DomainError(STATE, status=APPLICATION_LABELS[a.status])
    if not (note or "").strip():
        raise DomainError(RETURN_REASON)
    _guard_market_text(actor, {"note": note}, "market_application", a.id)
    a.qualified_by, a.qualification_note = _who(actor), note.strip()
    if not ok:
        a.status = "refused"
    db.session.flush()
    _advance(a)
    audit.record(actor, "market.qualify", "market_application", a.id, {"ok": ok}, note)
    return a


# ---------------------------------------------------------------------------- the ledger


def _account(kind: str, a: Application) -> str:
    return f"{kind}:application:{a.id}"


def held(a: Application, kind: str = "deposit") -> int:
    """Money held for the application: minus the balance of its liability account."""
    total = db.session.scalar(select(func.coalesce(func.sum(LedgerEntry.amount_fen), 0)).where(
        LedgerEntry.account == _account(kind, a)))
    return -int(total)


def _lock(a: Application) -> None:
    """The application's row lock: two payments or refunds of one deposit pass one at a time,
    each reading what the other posted (a refund paid twice by two clicks)."""
    db.session.execute(select(Application.id).where(Application.id == a.id).with_for_update())


def _post(actor, kind: str, a: Application, reference: str, lines: list[tuple[str, int]]) \
        -> LedgerTxn:
    txn = LedgerTxn(kind=kind, listing_id=a.listing_id, application_id=a.id,
                    reference=reference.strip(), recorded_by=_who(actor))
    db.session.add(txn)
    db.session.flush()
    for account, amount in lines:
        db.session.add(LedgerEntry(txn_id=txn.id, account=account, amount_fen=amount))
    db.session.flush()
    audit.record(actor, f"market.ledger.{kind}", "market_ledger_txn", txn.id,
                 {"application": a.id, "reference": reference, "lines": lines})
    return txn


def record_payment(actor, a: Application, amount_fen: int, reference: str,
                   what: str = "deposit") -> LedgerTxn:
    """'Payment received' for a deposit (保证金) or a risk deposit (风险保障金), recorded by the
    exchange operator with the bank's reference: bank debit, the application's account credit."""
    if not fen_ok(amount_fen) or not (reference or "").strip():
        raise DomainError(PAYMENT)
    if a.status == "refused":
        raise DomainError(STATE, status=APPLICATION_LABELS[a.status])
    _lock(a)
    due = a.listing.deposit_fen if what == "deposit" else a.risk_deposit_fen
    have = held(a, what)
    if have + amount_fen > due:
        raise DomainError(OVERPAID, what=_l("The deposit") if what == "deposit"
                          else _l("The risk deposit"), due=due, held=have)
    txn = _post(actor, "deposit_lodged" if what == "deposit" else "risk_lodged", a, reference,
                [(LEDGER_BANK, amount_fen), (_account(what, a), -amount_fen)])
    _advance(a)
    return txn


def refund(actor, a: Application, reference: str, what: str = "deposit") -> LedgerTxn | None:
    _lock(a)
    amount = held(a, what)
    if amount <= 0:
        return None
    if not (reference or "").strip():
        raise DomainError(PAYMENT)
    return _post(actor, "deposit_refunded" if what == "deposit" else "risk_refunded", a,
                 reference, [(_account(what, a), amount), (LEDGER_BANK, -amount)])


def _advance(a: Application) -> None:
    if a.status == "refused":
        return
    paid = held(a, "deposit") >= a.listing.deposit_fen and held(a, "risk") >= a.risk_deposit_fen
    if a.needs_review and a.qualified_by is None:
        a.status = "qualification"
    elif paid:
        a.status = "qualified"
    else:
        a.status = "registered"
    db.session.flush()


def reconciliation() -> dict:
    """The ledger's checks: every transaction sums to zero, all entries sum to zero, and the bank
    holds exactly what the applications' accounts owe."""
    unbalanced = db.session.execute(text(
        "SELECT txn_id FROM market_ledger_entry GROUP BY txn_id HAVING sum(amount_fen) <> 0"
    )).scalars().all()
    total = int(db.session.scalar(text(
        "SELECT coalesce(sum(amount_fen), 0) FROM market_ledger_entry")))
    bank = int(db.session.scalar(text(
        "SELECT coalesce(sum(amount_fen), 0) FROM market_ledger_entry WHERE account = :a"),
        {"a": LEDGER_BANK}))
    owed = -int(db.session.scalar(text(
        "SELECT coalesce(sum(amount_fen), 0) FROM market_ledger_entry WHERE account LIKE "
        "'deposit:%' OR account LIKE 'risk:%' OR account LIKE 'price:%' OR account LIKE "
        "'forfeit:%' OR account LIKE 'rent:%'")))
    return {"unbalanced": unbalanced, "total": total, "bank": bank, "owed": owed,
            "ok": not unbalanced and total == 0 and bank == owed}


def fen(amount: int | None) -> str:
    """12345 → '123.45' (yuan, exact)."""
    if amount is None:
        return ""
    sign = "-" if amount < 0 else ""
    a = abs(int(amount))
    return f"{sign}{a // 100:,}.{a % 100:02d}"


# ============================================================================ trading (II)
# The online auction, priority on equal terms and the award.  A bid is an INSERT; the database
# (migration 0016_market_trading) checks, numbers, times, chains and extends it under the
# auction's row lock — the operation only maps its refusals to rules.  Each accepted bid is its
# own hash-chained, append-only record (like the audit log), so it is not copied to the audit
# log; every other write here is audited.

AUCTION_RULES = _l("山西省农村产权流转交易管理办法（试行）2023 (online bidding: free period, timed "
                   "period, extension, step, reserve); domain.md §8")
AWARD_RULES = _l("山西省农村产权流转交易管理办法（试行）2023 (result notice, deposits: the "
                 "winner's applied to the price, losers refunded, forfeited by a winner who does "
                 "not pay in 3 working days or sign within 7 days); domain.md §8")

BID_ENDED = Rule("market.bid.ended", _l("The auction has ended; no bid is accepted after its "
                                        "end."), AUCTION_RULES, 409)
BID_NOT_STARTED = Rule("market.bid.not_started", _l("The auction has not started."),
                       AUCTION_RULES, 409)
BID_FIRST = Rule("market.bid.first", _l("The first bid must be at least the reserve (%(current)s "
                                        "fen) and a whole number of steps above it."),
                 AUCTION_RULES, 409)
BID_STEP = Rule("market.bid.step", _l("A bid must be above the current price (%(current)s fen) "
                                      "by a whole number of steps."), AUCTION_RULES, 409)
BID_NOT_ADMITTED = Rule("market.bid.not_admitted", _l("You are not an admitted bidder in this "
                                                      "auction."), AUCTION_RULES, 403)
BID_KEY = Rule("market.bid.key", _l("This client key was already used for another bid."),
               AUCTION_RULES, 409)
AUCTION_RUNNING = Rule("market.auction.running", _l("The auction has not ended yet."),
                       AUCTION_RULES, 409)
AUCTION_SETUP = Rule("market.auction.setup", _l("An auction needs a listing in competition by "
                                                "auction, a positive step and periods that "
                                                "follow each other."), AUCTION_RULES)
PRIORITY_WINDOW = Rule("market.priority.window", _l("The priority window is not open."),
                       ART38_PRIORITY, 409)
PRIORITY_NOT_HOLDER = Rule("market.priority.not_holder", _l("Only a member registered as "
                                                            "priority holder may exercise "
                                                            "priority."), ART38_PRIORITY, 403)
PRIORITY_PRICE = Rule("market.priority.price", _l("Priority is exercised at the final price "
                                                  "only."), ART38_PRIORITY, 409)
AWARD_STATE = Rule("market.award.state", _l("This award is %(status)s; that step is not open."),
                   AWARD_RULES, 409)
AWARD_NOT_DUE = Rule("market.award.not_due", _l("The winner's time to pay (until %(pay_by)s) "
                                                "and sign (until %(sign_by)s) has not run out."),
                     AWARD_RULES, 409)
PRICE_PAYMENT = Rule("market.award.payment", _l("The balance due is %(due)s fen: record exactly "
                                                "that, with the bank's reference."), AWARD_RULES)

_BID_ERRORS = {r.code: r for r in (BID_ENDED, BID_NOT_STARTED, BID_FIRST, BID_STEP,
                                   BID_NOT_ADMITTED, PRIORITY_WINDOW, PRIORITY_NOT_HOLDER,
                                   PRIORITY_PRICE)}


def _db_rule(exc: Exception) -> Rule | None:
    """The rule a trigger named in its message (RAISE EXCEPTION 'market.bid.step')."""
    msg = str(getattr(exc, "orig", exc)).strip().splitlines()[0] if str(exc) else ""
    return _BID_ERRORS.get(msg.split(":")[0].strip())


def market_accelerator() -> Decimal:
    from flask import current_app
    return Decimal(str(current_app.config.get("MARKET_ACCELERATOR") or 1))


def auction_now(auction) -> dt.datetime:
    """The auction's market time, from the database's clock (server time only)."""
    return db.session.scalar(text(
        "SELECT market_auction_now(a) FROM market_auction a WHERE a.id = :a"), {"a": auction.id})


def open_auction(actor, listing: Listing, step_fen: int, free_minutes: int, timed_minutes: int,
                 extension_minutes: int = 5, priority_minutes: int | None = None,
                 start_in_minutes: int = 0):
    """Open the online auction of a listing in competition: admitted bidders are its qualified
    applicants, numbered 竞买人1… in an order drawn at random (not their registration order).
    The reserve is the first year's price at the reserve (yuan/mu/year × area), in fen; bids
    are the first year's price of the whole item, in fen."""
    if listing.status != "competition" or listing.method != "auction":
        raise DomainError(STATE, status=STATUS_LABELS[listing.status])
    if priority_minutes is None:
        priority_minutes = setting("priority_minutes", listing.county_code)
    if (not fen_ok(step_fen) or not minutes_ok(free_minutes, priority_minutes, start_in_minutes)
            or not minutes_ok(timed_minutes, extension_minutes, positive=True)):
        raise DomainError(AUCTION_SETUP)
    origin = db.session.scalar(text("SELECT clock_timestamp()"))
    acc = market_accelerator()
    starts = origin + dt.timedelta(minutes=start_in_minutes)
    timed = starts + dt.timedelta(minutes=free_minutes)
    a = Auction(listing_id=listing.id, reserve_fen=first_year_fen(listing), step_fen=step_fen,
                starts_at=starts, timed_from=timed, ends_at=timed + dt.timedelta(
                    minutes=timed_minutes), extension_minutes=extension_minutes,
                clock_origin=origin, accelerator=acc, priority_minutes=priority_minutes,
                created_by=_who(actor))
    db.session.add(a)
    db.session.flush()
    qualified = [x for x in listing.applications if x.status == "qualified"]
    order = list(range(1, len(qualified) + 1))
    secrets.SystemRandom().shuffle(order)
    for no, x in zip(order, qualified, strict=True):
        db.session.add(AuctionBidder(auction_id=a.id, application_id=x.id, bidder_no=no,
                                     priority_holder=x.priority_holder))
    db.session.flush()
    audit.record(actor, "market.auction.open", "market_auction", a.id,
                 {"listing": listing.id, "reserve_fen": a.reserve_fen, "step_fen": step_fen,
                  "starts_at": starts, "timed_from": timed, "ends_at": a.ends_at,
                  "extension_minutes": extension_minutes, "accelerator": acc,
                  "bidders": len(qualified)})
    return a


def bidder_for(auction, applicant: Applicant):
    return db.session.scalar(select(AuctionBidder).join(
        Application, Application.id == AuctionBidder.application_id).where(
        AuctionBidder.auction_id == auction.id, Application.applicant_id == applicant.id))


BID_SQL = text("""
    INSERT INTO market_bid (auction_id, application_id, client_key, amount_fen)
    VALUES (:a, :app, :k, :amt)
    RETURNING seq, bidder_no, amount_fen, market_at, ends_after, hash""")
BID_AGAIN_SQL = text("""
    SELECT seq, bidder_no, amount_fen, market_at, ends_after, hash, application_id
    FROM market_bid WHERE auction_id = :a AND client_key = :k""")


def place_bid(auction_id: int, application_id: int, amount_fen: int, client_key: str) \
        -> tuple[dict, bool]:
    """One bid.  Returns (the bid, True) when it was accepted now, (the bid, False) when the
    client key names a bid already made (a retry): never a second bid.  The database refuses
    whatever breaks a rule; the refusal comes back as a DomainError with its rule."""
    from sqlalchemy.exc import DBAPIError

    if not fen_ok(amount_fen):
        raise DomainError(BID_STEP, current="—")
    key = (client_key or "").strip()
    if not 8 <= len(key) <= 64:
        raise DomainError(BID_KEY)
    params = {"a": auction_id, "app": application_id, "k": key, "amt": amount_fen}
    try:
        with db.session.begin_nested():
            row = db.session.execute(BID_SQL, params).mappings().first()
    except DBAPIError as exc:
        rule = _db_rule(exc)
        if rule is None:
            raise
        if rule in (BID_STEP, BID_FIRST):
            raise DomainError(rule, current=int(exc.orig.diag.message_detail)) from None
        raise DomainError(rule) from None
    if row is not None:
        return dict(row), True
    again = db.session.execute(BID_AGAIN_SQL, params).mappings().first()
    if again["application_id"] != application_id or again["amount_fen"] != amount_fen:
        raise DomainError(BID_KEY)
    return {k: v for k, v in again.items() if k != "application_id"}, False


def bids(auction) -> list:
    return db.session.scalars(select(Bid).where(Bid.auction_id == auction.id)
                              .order_by(Bid.seq)).all()


def verify_chain(auction) -> list[int]:
    """Sequences whose hash does not follow from the previous one and the bid (empty: intact)."""
    rows = db.session.execute(text("""
        SELECT seq, prev_hash, hash, encode(sha256(convert_to(concat_ws('|', prev_hash,
          auction_id, seq, application_id, amount_fen, client_key,
          to_char(market_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'),
          to_char(real_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US')), 'UTF8')), 'hex')
        FROM market_bid WHERE auction_id = :a ORDER BY seq"""), {"a": auction.id}).all()
    bad, prev = [], "0" * 64
    for i, (seq, p, h, calc) in enumerate(rows, start=1):
        if seq != i or p != prev or h != calc:
            bad.append(seq)
        prev = h
    return bad


def ranking(auction) -> list[dict]:
    """Each bidder's best (last) bid, highest first; equal prices cannot both be accepted (a bid
    must exceed the current price), so the earlier sequence breaks any tie by construction."""
    rows = db.session.execute(text("""
        SELECT DISTINCT ON (application_id) application_id, bidder_no, amount_fen, seq
        FROM market_bid WHERE auction_id = :a ORDER BY application_id, amount_fen DESC, seq"""),
        {"a": auction.id}).mappings().all()
    return sorted((dict(r) for r in rows), key=lambda r: (-r["amount_fen"], r["seq"]))


def close_auction(actor, auction, today: dt.date | None = None):
    """At the end: no bid → no deal (announce again); a priority holder other than the top
    bidder → the priority window (art 38 (5)); else the award to the top bidder."""
    db.session.execute(text("SELECT 1 FROM market_auction WHERE id = :a FOR UPDATE"),
                       {"a": auction.id})
    db.session.refresh(auction)
    if auction.status != "open":
        raise DomainError(STATE, status=auction.status)
    t = auction_now(auction)
    if t < auction.ends_at:
        raise DomainError(AUCTION_RUNNING)
    top = ranking(auction)
    auction.closed_at = t
    if not top:
        auction.status = "no_deal"
        db.session.flush()
        audit.record(actor, "market.auction.no_deal", "market_auction", auction.id, {})
        _reannounce_after_failure(actor, auction.listing, today)
        return auction
    holders = [b for b in auction.bidders if b.priority_holder
               and b.application_id != top[0]["application_id"]]
    if holders:
        auction.status = "priority"
        auction.priority_until = t + dt.timedelta(minutes=auction.priority_minutes)
        db.session.flush()
        audit.record(actor, "market.auction.closed", "market_auction", auction.id,
                     {"final_fen": top[0]["amount_fen"], "bids": auction.bid_count,
                      "priority_until": auction.priority_until})
        return auction
    auction.status, auction.priority_outcome = "closed", "none"
    db.session.flush()
    audit.record(actor, "market.auction.closed", "market_auction", auction.id,
                 {"final_fen": top[0]["amount_fen"], "bids": auction.bid_count})
    return make_award(actor, auction.listing, top[0]["application_id"], top[0]["amount_fen"],
                      "auction", auction=auction, today=today)


def exercise_priority(actor, auction, application: Application) -> None:
    """A member registered as priority holder takes the deal at the final price (art 38 (5))."""
    from sqlalchemy.exc import DBAPIError

    try:
        with db.session.begin_nested():
            db.session.add(PriorityExercise(auction_id=auction.id, application_id=application.id,
                                            price_fen=auction.current_price_fen))
            db.session.flush()
    except DBAPIError as exc:
        rule = _db_rule(exc)
        if rule is None:
            raise
        raise DomainError(rule) from None
    audit.record(actor, "market.priority.exercise", "market_auction", auction.id,
                 {"application": application.id, "price_fen": auction.current_price_fen})


def close_priority(actor, auction, today: dt.date | None = None):
    """After the window: the earliest exercise takes the deal at the final price; none → the
    exercise lapsed and the top bidder wins.  Either is recorded."""
    if auction.status != "priority":
        raise DomainError(STATE, status=auction.status)
    if auction_now(auction) < auction.priority_until:
        raise DomainError(PRIORITY_WINDOW)
    first = db.session.scalar(select(PriorityExercise).where(
        PriorityExercise.auction_id == auction.id).order_by(PriorityExercise.real_at,
                                                            PriorityExercise.id))
    top = ranking(auction)[0]
    auction.status = "closed"
    auction.priority_outcome = "exercised" if first else "lapsed"
    db.session.flush()
    audit.record(actor, "market.priority." + auction.priority_outcome, "market_auction",
                 auction.id, {"application": first.application_id if first else None})
    if first:
        return make_award(actor, auction.listing, first.application_id, top["amount_fen"],
                          "priority", auction=auction, today=today)
    return make_award(actor, auction.listing, top["application_id"], top["amount_fen"],
                      "auction", auction=auction, today=today)


def _next_ranked(auction, application_id: int) -> dict | None:
    r = [x for x in ranking(auction) if x["application_id"] != application_id]
    return r[0] if r else None


def make_award(actor, listing: Listing, application_id: int, price_fen: int, method: str,
               auction=None, rank: int = 1, today: dt.date | None = None, seller_ref=None):
    """The award and its result notice: 3 working days to pay, 7 days to sign.  Losers'
    deposits are refunded now — except the next-ranked bidder's, kept until the winner pays,
    since the award may pass to them."""
    today = today or clock.today()
    county = listing.county_code
    pay_by = workdays.announcement_window(today + dt.timedelta(days=1),
                                          setting("pay_working_days", county)).end
    refund_by = workdays.announcement_window(today + dt.timedelta(days=1),
                                             setting("refund_working_days", county)).end
    aw = Award(listing_id=listing.id, auction_id=auction.id if auction else None,
               application_id=application_id, method=method, rank=rank, price_fen=price_fen,
               notice_on=today, pay_by=pay_by,
               sign_by=today + dt.timedelta(days=setting("sign_days", county)),
               seller_agreed_ref=seller_ref, created_by=_who(actor))
    db.session.add(aw)
    db.session.flush()
    keep = {application_id}
    if auction is not None and rank == 1:
        nxt = _next_ranked(auction, application_id)
        if nxt:
            keep.add(nxt["application_id"])
    for a in listing.applications:
        if a.id not in keep:
            refund(actor, a, f"award {aw.id}: refund, to be paid back by {refund_by}")
    audit.record(actor, "market.award", "market_award", aw.id,
                 {"listing": listing.id, "application": application_id, "price_fen": price_fen,
                  "method": method, "rank": rank, "pay_by": pay_by, "sign_by": aw.sign_by})
    return aw


def pay_price(actor, aw, amount_fen: int, reference: str, today: dt.date | None = None):
    """The winner pays the balance of the first year's price; the deposit is applied to it.  The
    money is owed to the contractor (art 39) until paid out."""
    today = today or clock.today()
    if aw.status != "pending" or today > aw.pay_by:
        raise DomainError(AWARD_STATE, status=aw.status)
    a = aw.application
    dep = held(a)
    due = aw.price_fen - dep
    if type(amount_fen) is not int or amount_fen != due or not (reference or "").strip():
        raise DomainError(PRICE_PAYMENT, due=due)
    owed = f"price:award:{aw.id}"
    if dep:
        _post(actor, "deposit_applied", a, f"award {aw.id}: deposit applied",
              [(_account("deposit", a), dep), (owed, -dep)])
    _post(actor, "price_paid", a, reference, [(LEDGER_BANK, due), (owed, -due)])
    aw.status, aw.paid_on = "paid", today
    db.session.flush()
    if aw.auction_id:
        nxt = _next_ranked(db.session.get(Auction, aw.auction_id), a.id)
        if nxt:
            refund(actor, db.session.get(Application, nxt["application_id"]),
                   f"award {aw.id}: winner paid, refund")
    audit.record(actor, "market.award.paid", "market_award", aw.id, {"amount_fen": due})
    return aw


def forfeit(actor, aw, seller_agrees_ref: str | None = None, today: dt.date | None = None):
    """A winner who did not pay in 3 working days (or sign within 7 days) forfeits the deposit;
    the award passes to the next-ranked bidder at their own last price if the seller agrees,
    else the listing is announced again."""
    today = today or clock.today()
    if aw.status not in ("pending", "paid"):
        raise DomainError(AWARD_STATE, status=aw.status)
    late_pay = aw.status == "pending" and today > aw.pay_by
    late_sign = aw.status != "signed" and today > aw.sign_by
    if not (late_pay or late_sign):
        raise DomainError(AWARD_NOT_DUE, pay_by=aw.pay_by, sign_by=aw.sign_by)
    a = aw.application
    dep = held(a)
    if dep:
        _post(actor, "deposit_forfeited", a, f"award {aw.id}: forfeited",
              [(_account("deposit", a), dep), (f"forfeit:listing:{aw.listing_id}", -dep)])
    aw.status, aw.forfeited_on = "forfeited", today
    db.session.flush()
    audit.record(actor, "market.award.forfeit", "market_award", aw.id,
                 {"late_pay": late_pay, "late_sign": late_sign, "deposit_fen": dep})
    auction = db.session.get(Auction, aw.auction_id) if aw.auction_id else None
    nxt = _next_ranked(auction, a.id) if auction else None
    if nxt and (seller_agrees_ref or "").strip():
        return make_award(actor, aw.listing, nxt["application_id"], nxt["amount_fen"],
                          "next_ranked", auction=auction, rank=aw.rank + 1, today=today,
                          seller_ref=seller_agrees_ref.strip())
    if nxt:
        refund(actor, db.session.get(Application, nxt["application_id"]),
               f"award {aw.id}: forfeited, seller declined the next-ranked, refund")
    _reannounce_after_failure(actor, aw.listing, today)
    return None


def _reannounce_after_failure(actor, listing: Listing, today: dt.date | None) -> None:
    today = today or clock.today()
    listing.reannounce_count += 1
    _announce(listing, today)
    db.session.flush()
    audit.record(actor, "market.reannounce", "market_listing", listing.id,
                 {"round": listing.reannounce_count, "until": listing.announcement_ends_on})


def pseudonym(no: int) -> str:
    from flask_babel import gettext
    return gettext("Bidder %(n)s", n=no)


def bidder_application(auction_id: int, key: str) -> int:
    """The application of the admitted bidder whose applicant key this is (one query)."""
    app_id = db.session.scalar(text("""
        SELECT b.application_id FROM market_auction_bidder b
        JOIN market_application p ON p.id = b.application_id
        JOIN market_applicant a ON a.id = p.applicant_id
        WHERE b.auction_id = :au AND a.key_sha256 = :h"""),
        {"au": auction_id, "h": hashlib.sha256((key or "").encode()).hexdigest()})
    if app_id is None:
        raise DomainError(BID_NOT_ADMITTED)
    return app_id


def auction_state(auction_id: int, since_seq: int = 0) -> dict:
    from werkzeug.exceptions import NotFound

    row = db.session.execute(text("""
        SELECT a.*, market_auction_now(a) AS now FROM market_auction a WHERE a.id = :a"""),
        {"a": auction_id}).mappings().first()
    if row is None:
        raise NotFound()
    out = dict(row)
    out["bids"] = [{"seq": b.seq, "bidder": pseudonym(b.bidder_no), "bidder_no": b.bidder_no,
                    "amount_fen": b.amount_fen, "market_at": b.market_at,
                    "ends_at": b.ends_after}
                   for b in db.session.execute(text(
                       "SELECT seq, bidder_no, amount_fen, market_at, ends_after FROM market_bid "
                       "WHERE auction_id = :a AND seq > :s ORDER BY seq DESC LIMIT 200"),
                       {"a": auction_id, "s": since_seq})]
    return out


# ---------------------------------------------------------------------------- the contract

ART40 = _l("农村土地承包法 (Rural Land Contracting Law) art 40 (a written contract); model "
           "contracts GF—2021—2606 / GF—2021—2607; 农村土地经营权流转管理办法 (2021) (filing "
           "with the issuing party, its ledger of transfers)")
ART41_REG = _l("农村土地承包法 (Rural Land Contracting Law) art 41 (transfers of 5 years or more "
               "may be registered)")
ART42 = _l("农村土地承包法 (Rural Land Contracting Law) art 42 (the contractor may end a "
           "transfer only if the transferee changes the agricultural use, abandons the land two "
           "consecutive years or more, seriously damages it, or commits another serious "
           "breach)")
ART39 = _l("农村土地承包法 (Rural Land Contracting Law) art 39 (the proceeds belong to the "
           "contractor)")
CONTRACT_STATE = Rule("market.contract.state", _l("This contract is %(status)s; that step is not "
                                                  "open."), ART40, 409)
CONTRACT_PARTY = Rule("market.contract.party", _l("Only the %(party)s may confirm for that "
                                                  "party."), ART40, 403)
CONTRACT_DIGEST = Rule("market.contract.digest", _l("The PDF you confirm (%(given)s) is not the "
                                                    "contract's (%(sha)s)."), ART40, 409)
CONTRACT_FILER = Rule("market.contract.filer", _l("A contract is filed by its issuing party "
                                                  "(the collective %(fbfbm)s)."), ART40, 403)
CONTRACT_LATE = Rule("market.contract.late", _l("The contract was due by %(sign_by)s."),
                     AWARD_RULES, 409)
END_GROUND = Rule("market.end.ground", _l("'%(ground)s' is not a ground on which the contractor "
                                          "may end a transfer."), ART42)
END_EVIDENCE = Rule("market.end.evidence", _l("Ending a transfer needs the evidence of the "
                                              "ground (a description and its document)."), ART42)
END_WHO = Rule("market.end.who", _l("Only the contractor (or the issuing party on its behalf) "
                                    "may end a transfer."), ART42, 403)
RENT_PAYMENT = Rule("market.rent.payment", _l("A rent payment is a positive amount in fen with "
                                              "the bank's reference, at most what is due "
                                              "(%(due)s fen)."), ART39)
RENT_PAYOUT = Rule("market.rent.payout", _l("At most the rent held for the contractor (%(held)s "
                                            "fen) can be paid out."), ART39)

ART42_GROUNDS = {"use_changed": _l("the transferee changed the agricultural use"),
                 "abandoned": _l("the land abandoned two consecutive years or more"),
                 "serious_damage": _l("serious damage to the land"),
                 "serious_breach": _l("another serious breach of the contract")}
PARTY_LABELS = {"transferor": _l("transferor (contractor)"), "transferee": _l("transferee")}
CONTRACT_LABELS = {"draft": _l("awaiting both parties' confirmation"),
                   "confirmed": _l("confirmed by both parties"),
                   "filed": _l("filed with the issuing party"), "terminated": _l("terminated")}


def _transferor(listing: Listing) -> dict:
    if listing.item_class == "household":
        hh = db.session.scalar(select(Household).where(Household.cbfbm == listing.household_code))
        head = hh.head if hh else None
        return {"name": hh.name if hh else listing.household_code,
                "household_code": listing.household_code,
                "id_masked": idnumber.mask(head.id_number) if head else "",
                "address": hh.address if hh else ""}
    return {"name": _village_name(listing.fbfbm), "household_code": "", "id_masked": "",
            "address": ""}


def _contract_content(listing: Listing, aw, number: str, today: dt.date) -> dict:
    from shapely import from_wkb

    from gis.svg import plan

    ap = aw.application.applicant
    rows = db.session.execute(text("""
        SELECT p.code, p.name, p.scmj, p.scmjm, p.dldj, p.east, p.south, p.west, p.north,
               ST_AsBinary(ST_Transform(p.geom, p.survey_srid)) AS wkb
        FROM market_listing_parcel lp JOIN parcel p ON p.uid = lp.parcel_uid
             AND p.end_lifespan IS NULL
        WHERE lp.listing_id = :l ORDER BY p.code"""), {"l": listing.id}).all()
    svg = plan([from_wkb(r.wkb) for r in rows], [r.code[-5:] for r in rows], size=420,
               css_class="certificate-map") if rows else ""
    years = (listing.term_end - listing.term_start).days / 365.2425
    return {
        "number": number, "model": "GF—2021—2607" if listing.kind == "equity" else "GF—2021—2606",
        "kind": listing.kind, "kind_title": KIND_TITLES.get(listing.kind, listing.kind),
        "transferor": _transferor(listing),
        "transferee": {"name": ap.name, "kind": ap.kind,
                       "id_masked": idnumber.mask(ap.id_number) if ap.id_number else "",
                       "credit_code": ap.credit_code or "", "phone": idnumber.mask_phone(ap.phone)},
        "issuing_party": _village_name(listing.fbfbm), "fbfbm": listing.fbfbm,
        "parcels": [{"code": r.code, "name": r.name or "", "area_mu": str(r.scmjm),
                     "area_m2": str(r.scmj), "grade": r.dldj or "", "east": r.east or "",
                     "south": r.south or "", "west": r.west or "", "north": r.north or ""}
                    for r in rows],
        "asset": listing.asset_description or "",
        "total_mu": str(listing.area_mu), "map_svg": svg,
        "term_start": listing.term_start.isoformat(), "term_end": listing.term_end.isoformat(),
        "term_years": round(years, 1),
        "land_use": listing.land_use, "use_description": listing.use_description or "",
        "annual_rent_fen": aw.price_fen, "annual_rent": fen(aw.price_fen),
        "payment_schedule": listing.payment_schedule, "method": aw.method,
        "retransfer_allowed": listing.retransfer_allowed,
        "deposit": fen(listing.deposit_fen), "award_notice_on": aw.notice_on.isoformat(),
        "drawn_on": today.isoformat(),
    }


def render_contract(content: dict) -> bytes:
    return render_document("market/contract.html", {"c": content})


def draw_contract(actor, aw, today: dt.date | None = None):
    """The contract from the award (art 40: all eight clauses, GF—2021—2606 structure, parcel
    schedule and map) as a PDF whose SHA-256 both parties then confirm."""
    today = today or clock.today()
    if aw.status not in ("pending", "paid"):
        raise DomainError(AWARD_STATE, status=aw.status)
    if today > aw.sign_by:
        raise DomainError(CONTRACT_LATE, sign_by=aw.sign_by)
    listing = aw.listing
    seq = db.session.scalar(text("SELECT count(*) + 1 FROM market_contract WHERE fbfbm = :f"),
                            {"f": listing.fbfbm})
    number = f"LZ{listing.fbfbm}-{today.year}-{seq:04d}"
    content = _contract_content(listing, aw, number, today)
    pdf = render_contract(content)
    ap = aw.application
    c = Contract(award_id=aw.id, listing_id=listing.id, number=number, model=content["model"],
                 fbfbm=listing.fbfbm, transferee_application_id=ap.id,
                 transferee_name=ap.applicant.name, transferee_person_id=ap.member_person_id,
                 annual_rent_fen=aw.price_fen, term_start=listing.term_start,
                 term_end=listing.term_end, content=content, pdf=pdf,
                 pdf_sha256=hashlib.sha256(pdf).hexdigest(), created_by=_who(actor))
    db.session.add(c)
    db.session.flush()
    audit.record(actor, "market.contract.draw", "market_contract", c.id,
                 {"award": aw.id, "number": number, "pdf_sha256": c.pdf_sha256})
    return c


def may_confirm(actor, contract, party: str, applicant: Applicant | None = None) -> bool:
    if party == "transferee":
        return applicant is not None and contract.award.application.applicant_id == applicant.id
    listing = contract.listing
    if listing.item_class == "household":
        return getattr(actor, "household_code", None) == listing.household_code
    return (getattr(actor, "role", None) == "collective_officer"
            and listing.fbfbm.startswith(actor.jurisdiction_code or "-"))


def confirm_contract(actor, contract, party: str, pdf_sha256: str,
                     applicant: Applicant | None = None):
    """A party confirms the contract online: who, server time, and the SHA-256 of the PDF they
    saw (the database refuses another digest).  Both → confirmed."""
    if contract.status != "draft":
        raise DomainError(CONTRACT_STATE, status=CONTRACT_LABELS[contract.status])
    if party not in PARTY_LABELS or not may_confirm(actor, contract, party, applicant):
        raise DomainError(CONTRACT_PARTY, party=PARTY_LABELS.get(party, party))
    if (pdf_sha256 or "").strip().lower() != contract.pdf_sha256:
        raise DomainError(CONTRACT_DIGEST, given=pdf_sha256, sha=contract.pdf_sha256)
    who = applicant.name if party == "transferee" else _who(actor)
    if any(c.party == party for c in contract.confirmations):
        raise DomainError(CONTRACT_STATE, status=CONTRACT_LABELS[contract.status])
    conf = ContractConfirmation(contract_id=contract.id, party=party, confirmed_by=who,
                                pdf_sha256=contract.pdf_sha256)
    db.session.add(conf)
    db.session.flush()
    db.session.refresh(contract)
    audit.record(actor if party == "transferor" else f"applicant:{applicant.id}",
                 "market.contract.confirm", "market_contract", contract.id,
                 {"party": party, "pdf_sha256": contract.pdf_sha256})
    if len(contract.confirmations) == 2:
        contract.status = "confirmed"
        db.session.flush()
    return conf


def file_contract(actor, contract, today: dt.date | None = None, base: str | None = None):
    """The issuing party files the confirmed contract (备案) in its ledger of transfers; a term
    of 5 years or more registers the transferee's management right (art 41); the rent schedule
    is set; the transaction certificate is issued."""
    today = today or clock.today()
    if contract.status != "confirmed":
        raise DomainError(CONTRACT_STATE, status=CONTRACT_LABELS[contract.status])
    if not (getattr(actor, "role", None) == "collective_officer"
            and contract.fbfbm.startswith(actor.jurisdiction_code or "-")):
        raise DomainError(CONTRACT_FILER, fbfbm=contract.fbfbm)
    at = db.session.scalar(text("SELECT clock_timestamp()"))
    contract.status, contract.filed_by, contract.filed_at = "filed", _who(actor), at
    listing = contract.listing
    years = _years(contract.term_start, contract.term_end)
    if years >= 5 and listing.parcels:
        r = rights.register_management(
            actor, contract.transferee_name, contract.transferee_person_id, contract.fbfbm,
            [(lp.parcel_uid, lp.parcel_code) for lp in listing.parcels], contract.term_start,
            contract.term_end, f"流转合同 {contract.number} 备案 (art 41)")
        contract.management_right_uid = r.uid
    db.session.flush()
    aw = contract.award
    aw.status = "signed"
    db.session.flush()
    _schedule(contract)
    audit.record(actor, "market.contract.file", "market_contract", contract.id,
                 {"number": contract.number, "management_right": contract.management_right_uid})
    issue_trade_certificate(actor, contract, today, base)
    return contract


def _years(start: dt.date, end: dt.date) -> int:
    """Whole years from start to end inclusive (2027-03-01 … 2032-02-28 is 5)."""
    nxt = end + dt.timedelta(days=1)
    return nxt.year - start.year - ((nxt.month, nxt.day) < (start.month, start.day))


def transfers_ledger(fbfbm: str) -> list:
    """The issuing party's ledger of transfers (流转台账): its filed contracts."""
    return db.session.scalars(select(Contract).where(
        Contract.fbfbm == fbfbm, Contract.status.in_(("filed", "terminated")))
        .order_by(Contract.filed_at)).all()


# ---------------------------------------------------------------------------- certificate


def issue_trade_certificate(actor, contract, today: dt.date | None = None,
                            base: str | None = None):
    """The transaction certificate (交易鉴证书): parties, parcels, method, price, term, number,
    date — with the QR code to /verify/TOKEN (the certificate machinery's verification)."""
    today = today or clock.today()
    token = secrets.token_urlsafe(18)
    number = f"JZ{contract.fbfbm[:6]}{today.year}{contract.id:06d}"
    cc = contract.content
    content = {"number": number, "contract": contract.number, "model": contract.model,
               "transferor": cc["transferor"], "transferee": cc["transferee"],
               "parcels": cc["parcels"], "asset": cc.get("asset", ""), "total_mu": cc["total_mu"],
               "method": contract.award.method, "annual_rent": fen(contract.annual_rent_fen),
               "term_start": contract.term_start.isoformat(),
               "term_end": contract.term_end.isoformat(), "issued_on": today.isoformat(),
               "issuing_party": cc["issuing_party"],
               "management_right_uid": contract.management_right_uid,
               "contract_pdf_sha256": contract.pdf_sha256,
               "authority": "农村产权流转交易中心",
               "verify_url": certs.verify_url(token, base)}
    tc = TradeCertificate(contract_id=contract.id, number=number, token=token, content=content,
                          content_sha256=hashlib.sha256(
                              __import__("json").dumps(content, sort_keys=True,
                                                       ensure_ascii=False).encode()).hexdigest(),
                          issued_by=_who(actor))
    db.session.add(tc)
    db.session.flush()
    audit.record(actor, "market.certificate.issue", "market_trade_certificate", tc.id,
                 {"number": number, "contract": contract.number})
    return tc


def trade_certificate_pdf(tc) -> bytes:
    return render_document("market/trade_certificate.html",
                           {"c": tc.content, "qr": qr_svg(tc.content["verify_url"]),
                            "status": tc.status})


def trade_certificate_by_token(token: str):
    return db.session.scalar(select(TradeCertificate).where(TradeCertificate.token == token))


# ---------------------------------------------------------------------------- ending (art 42)


def terminate(actor, contract, ground: str, evidence: str, document: bytes | None,
              today: dt.date | None = None):
    """The contractor ends a transfer, only on an art 42 ground, with evidence; the management
    right ends with it (the database refuses it otherwise) and the certificate is cancelled."""
    today = today or clock.today()
    if contract.status != "filed":
        raise DomainError(CONTRACT_STATE, status=CONTRACT_LABELS[contract.status])
    if ground not in ART42_GROUNDS:
        raise DomainError(END_GROUND, ground=ground)
    if not (evidence or "").strip() or not document:
        raise DomainError(END_EVIDENCE)
    if not may_confirm(actor, contract, "transferor"):
        raise DomainError(END_WHO)
    contract.status, contract.terminated_on = "terminated", today
    contract.termination_ground, contract.termination_evidence = ground, evidence.strip()
    contract.termination_evidence_sha256 = hashlib.sha256(document).hexdigest()
    contract.terminated_by = _who(actor)
    db.session.flush()
    if contract.management_right_uid:
        rights.end_management_on_termination(
            contract.management_right_uid, today,
            f"{contract.number}: {ground}: {evidence.strip()}")
    tc = db.session.scalar(select(TradeCertificate).where(
        TradeCertificate.contract_id == contract.id))
    if tc and tc.status == "valid":
        tc.status, tc.cancelled_reason = "cancelled", f"art 42: {ground}: {evidence.strip()}"
    db.session.flush()
    audit.record(actor, "market.contract.terminate", "market_contract", contract.id,
                 {"ground": ground, "evidence_sha256": contract.termination_evidence_sha256},
                 evidence)
    return contract


def expire_management(actor, today: dt.date | None = None) -> int:
    """Management rights whose term has run out end by themselves (ground: expiry)."""
    today = today or clock.today()
    n = rights.expire_management_rights(today)
    if n:
        audit.record(actor, "market.management.expire", "land_right", None, {"count": n})
    return n


# ---------------------------------------------------------------------------- rent


def _schedule(contract) -> None:
    """One instalment a year on the anniversary; the first year's was paid with the award
    (deposit applied + balance), so the schedule starts with year 2; a last part-year is
    pro rata by days, in whole fen."""
    no, start = 1, contract.term_start
    end_excl = contract.term_end + dt.timedelta(days=1)
    while start < end_excl:
        nxt = _add_years(start, 1)
        if nxt > end_excl:
            amount = contract.annual_rent_fen * (end_excl - start).days // (nxt - start).days
        else:
            amount = contract.annual_rent_fen
        if no > 1 and amount > 0:
            db.session.add(RentInstalment(contract_id=contract.id, no=no, due_on=start,
                                          amount_fen=amount))
        no, start = no + 1, nxt
    db.session.flush()


def _add_years(d: dt.date, n: int) -> dt.date:
    try:
        return d.replace(year=d.year + n)
    except ValueError:
        return d.replace(year=d.year + n, day=28)


def _rent_account(contract) -> str:
    return f"rent:contract:{contract.id}"


def _balance(account: str) -> int:
    return int(db.session.scalar(select(func.coalesce(func.sum(LedgerEntry.amount_fen), 0))
                                 .where(LedgerEntry.account == account)))


def rent_status(contract, today: dt.date | None = None) -> dict:
    """Due, received, paid out and held per contract; arrears are instalments due and unpaid
    (received money is applied to the oldest instalment first)."""
    today = today or clock.today()
    received = int(db.session.scalar(text("""
        SELECT coalesce(sum(e.amount_fen), 0) FROM market_ledger_entry e
        JOIN market_ledger_txn t ON t.id = e.txn_id
        WHERE e.account = :a AND t.kind = 'rent_received'"""), {"a": _rent_account(contract)}))
    received = -received
    left, rows = received, []
    for i in contract.instalments:
        paid = min(left, i.amount_fen)
        left -= paid
        rows.append({"no": i.no, "due_on": i.due_on, "amount_fen": i.amount_fen, "paid_fen": paid,
                     "arrears": i.due_on <= today and paid < i.amount_fen})
    held_fen = -_balance(_rent_account(contract))
    return {"instalments": rows, "received_fen": received, "held_fen": held_fen,
            "paid_out_fen": received - held_fen,
            "due_fen": sum(i.amount_fen for i in contract.instalments),
            "arrears": [r for r in rows if r["arrears"]]}


def record_rent(actor, contract, amount_fen: int, reference: str):
    """Rent received from the transferee (bank debit, held for the contractor)."""
    st = rent_status(contract)
    due = st["due_fen"] - st["received_fen"]
    if (not fen_ok(amount_fen) or amount_fen > due
            or not (reference or "").strip()):
        raise DomainError(RENT_PAYMENT, due=due)
    return _post(actor, "rent_received", contract.award.application, reference,
                 [(LEDGER_BANK, amount_fen), (_rent_account(contract), -amount_fen)])


def pay_out(actor, contract, amount_fen: int, reference: str, what: str = "rent"):
    """Pay the contractor what is held for it (art 39): rent, or the first year's price."""
    account = _rent_account(contract) if what == "rent" else f"price:award:{contract.award_id}"
    held_fen = -_balance(account)
    if (not fen_ok(amount_fen) or amount_fen > held_fen
            or not (reference or "").strip()):
        raise DomainError(RENT_PAYOUT, held=held_fen)
    return _post(actor, "rent_paid_out" if what == "rent" else "price_paid_out",
                 contract.award.application, reference,
                 [(account, amount_fen), (LEDGER_BANK, -amount_fen)])


_redis = {}


def publish_bid(auction_id: int, row: dict) -> None:
    """With REDIS_URL set, the stream services listen on Redis: publish the committed bid there
    (without it, the bid trigger's NOTIFY reaches them through PostgreSQL at commit)."""
    from flask import current_app

    url = current_app.config.get("REDIS_URL")
    if not url:
        return
    import json

    import redis

    r = _redis.get(url) or _redis.setdefault(url, redis.from_url(url))
    r.publish("market_auction", json.dumps({
        "auction": auction_id, "seq": row["seq"], "bidder": row["bidder_no"],
        "amount_fen": row["amount_fen"], "at": row["market_at"].isoformat(),
        "ends_at": row["ends_after"].isoformat()}))


def auction_of(listing: Listing):
    return db.session.scalar(select(Auction).where(Auction.listing_id == listing.id))


def standing_award(listing: Listing):
    return db.session.scalar(select(Award).where(Award.listing_id == listing.id,
                                                 Award.status != "forfeited"))


# ---------------------------------------------------------------------------- tender (招标)

TENDER_RULES = _l("国办发〔2014〕71号; 山西省农村产权流转交易管理办法（试行）2023 (tender: sealed "
                  "bids opened at the set time, scored by published weights); domain.md §8")
TENDER_SETUP = Rule("market.tender.setup", _l("A tender needs a listing in competition by "
                                              "tender, periods that follow each other and "
                                              "weights for price and plan that sum to 100."),
                    TENDER_RULES)
TENDER_CLOSED = Rule("market.tender.lodging_closed", _l("The time for lodging sealed bids has "
                                                        "ended."), TENDER_RULES, 409)
TENDER_NOT_OPEN = Rule("market.tender.not_open", _l("Bids are revealed only from the opening "
                                                    "until the end of the reveal period."),
                       TENDER_RULES, 409)
TENDER_MISMATCH = Rule("market.tender.mismatch", _l("The price, nonce and plan do not match the "
                                                    "commitment lodged."), TENDER_RULES, 409)
TENDER_COMMITMENT = Rule("market.tender.commitment", _l("A sealed bid is the SHA-256 (64 hex "
                                                        "digits) of price_fen|nonce|plan."),
                         TENDER_RULES)
TENDER_ONCE = Rule("market.tender.once", _l("One sealed bid per applicant; it cannot be "
                                            "replaced."), TENDER_RULES, 409)
TENDER_RUNNING = Rule("market.tender.running", _l("The reveal period has not ended."),
                      TENDER_RULES, 409)
_BID_ERRORS.update({r.code: r for r in (TENDER_CLOSED, TENDER_NOT_OPEN, TENDER_MISMATCH)})


def commitment(price_fen: int, nonce: str, plan: str) -> str:
    """What a bidder lodges (computed on their side): sha256 of 'price_fen|nonce|plan'."""
    return hashlib.sha256(f"{price_fen}|{nonce}|{plan}".encode()).hexdigest()


def open_tender(actor, listing: Listing, lodging_minutes: int, reveal_minutes: int,
                weight_price: int = 100, weight_plan: int = 0, opening_after_minutes: int = 0):
    if listing.status != "competition" or listing.method != "tender":
        raise DomainError(STATE, status=STATUS_LABELS[listing.status])
    if (not minutes_ok(lodging_minutes, reveal_minutes, positive=True)
            or not minutes_ok(opening_after_minutes) or type(weight_price) is not int
            or type(weight_plan) is not int or weight_price + weight_plan != 100
            or weight_price <= 0 or weight_plan < 0):
        raise DomainError(TENDER_SETUP)
    origin = db.session.scalar(text("SELECT clock_timestamp()"))
    lodging_end = origin + dt.timedelta(minutes=lodging_minutes)
    opens = lodging_end + dt.timedelta(minutes=opening_after_minutes)
    t = Tender(listing_id=listing.id, reserve_fen=first_year_fen(listing),
               lodging_ends_at=lodging_end, opens_at=opens,
               reveal_ends_at=opens + dt.timedelta(minutes=reveal_minutes), clock_origin=origin,
               accelerator=market_accelerator(), weight_price=weight_price,
               weight_plan=weight_plan, created_by=_who(actor))
    db.session.add(t)
    db.session.flush()
    audit.record(actor, "market.tender.open", "market_tender", t.id,
                 {"listing": listing.id, "lodging_ends_at": lodging_end, "opens_at": opens,
                  "weights": {"price": weight_price, "plan": weight_plan}})
    return t


def tender_now(t) -> dt.datetime:
    return db.session.scalar(text("SELECT market_tender_now(t) FROM market_tender t "
                                  "WHERE t.id = :i"), {"i": t.id})


def _tender_db(fn):
    from sqlalchemy.exc import DBAPIError
    try:
        with db.session.begin_nested():
            return fn()
    except DBAPIError as exc:
        rule = _db_rule(exc)
        if rule is None:
            raise
        raise DomainError(rule) from None


def lodge(actor, t, application: Application, commitment_hex: str):
    """Lodge a sealed bid: only its commitment reaches the server."""
    c = (commitment_hex or "").strip().lower()
    if len(c) != 64 or any(ch not in "0123456789abcdef" for ch in c):
        raise DomainError(TENDER_COMMITMENT)
    if application.listing_id != t.listing_id or application.status != "qualified":
        raise DomainError(BID_NOT_ADMITTED)
    if db.session.scalar(select(TenderBid.id).where(TenderBid.tender_id == t.id,
                                                    TenderBid.application_id == application.id)):
        raise DomainError(TENDER_ONCE)
    b = TenderBid(tender_id=t.id, application_id=application.id, commitment=c)

    def ins():
        db.session.add(b)
        db.session.flush()
        return b
    _tender_db(ins)
    audit.record(actor, "market.tender.lodge", "market_tender_bid", b.id,
                 {"commitment": c})  # the commitment only: the price stays sealed
    return b


def reveal(actor, t, application: Application, price_fen: int, nonce: str, plan: str):
    """At the opening, the bidder reveals price, nonce and plan; the database checks them
    against the commitment and the time."""
    b = db.session.scalar(select(TenderBid).where(TenderBid.tender_id == t.id,
                                                  TenderBid.application_id == application.id))
    if b is None:
        raise DomainError(BID_NOT_ADMITTED)
    if not fen_ok(price_fen):  # int(1000.7) would reveal 1000; 2**63 would be a fault
        raise DomainError(TENDER_MISMATCH)
    _guard_market_text(actor, {"plan": plan}, "market_tender_bid", b.id)

    def upd():
        db.session.execute(text("UPDATE market_tender_bid SET price_fen = :p, nonce = :n, "
                                "plan = :pl WHERE id = :i"),
                           {"p": int(price_fen), "n": nonce, "pl": plan, "i": b.id})
    _tender_db(upd)
    db.session.refresh(b)
    audit.record(actor, "market.tender.reveal", "market_tender_bid", b.id,
                 {"price_fen": b.price_fen})
    return b


def score_plan(actor, t, bid, score: int) -> None:
    """The evaluation panel's score of a revealed plan (0–100)."""
    def upd():
        db.session.execute(text("UPDATE market_tender_bid SET plan_score = :s WHERE id = :i"),
                           {"s": int(score), "i": bid.id})
    _tender_db(upd)
    db.session.refresh(bid)
    audit.record(actor, "market.tender.score", "market_tender_bid", bid.id, {"score": score})


def tender_ranking(t) -> list[dict]:
    """Valid bids (revealed, at or above the reserve), by total score: price share × weight
    (the best price scores the full weight) + plan score × weight / 100; ties to the earlier
    lodging.  Scores in integer millipoints."""
    valid = [b for b in t.bids if b.price_fen is not None and b.price_fen >= t.reserve_fen]
    if not valid:
        return []
    best = max(b.price_fen for b in valid)
    rows = [{"bid": b, "application_id": b.application_id, "amount_fen": b.price_fen,
             "score": b.price_fen * t.weight_price * 1000 // best
             + (b.plan_score or 0) * t.weight_plan * 10} for b in valid]
    return sorted(rows, key=lambda r: (-r["score"], r["bid"].lodged_at, r["bid"].id))


def close_tender(actor, t, today: dt.date | None = None):
    """After the reveal period: the best score wins at its own price; none valid → no deal."""
    if t.status != "open":
        raise DomainError(STATE, status=t.status)
    if tender_now(t) < t.reveal_ends_at:
        raise DomainError(TENDER_RUNNING)
    ranking_ = tender_ranking(t)
    t.status = "decided"
    db.session.flush()
    audit.record(actor, "market.tender.decide", "market_tender", t.id,
                 {"ranking": [(r["application_id"], r["amount_fen"], r["score"])
                              for r in ranking_]})
    if not ranking_:
        _reannounce_after_failure(actor, t.listing, today)
        return None
    top = ranking_[0]
    return make_award(actor, t.listing, top["application_id"], top["amount_fen"], "tender",
                      today=today)


# ---------------------------------------------------------------------------- agreement

AGREEMENT_PRICE = Rule("market.agreement.price", _l("With a single qualified applicant the deal "
                                                    "is by agreement at or above the reserve "
                                                    "(%(reserve)s fen)."), TRADING)
NEGOTIATION_REF = Rule("market.negotiation.seller", _l("A negotiated deal needs the seller's "
                                                       "written agreement (reference) and a "
                                                       "positive price."), ART38_FARM)


def agree(actor, listing: Listing, price_fen: int, today: dt.date | None = None):
    """One qualified applicant: agreement at or above the reserve (协议)."""
    if listing.status != "agreement":
        raise DomainError(STATE, status=STATUS_LABELS[listing.status])
    qualified = [a for a in listing.applications if a.status == "qualified"]
    reserve = first_year_fen(listing)
    if len(qualified) != 1 or not fen_ok(price_fen) or price_fen < reserve:
        raise DomainError(AGREEMENT_PRICE, reserve=reserve)
    return make_award(actor, listing, qualified[0].id, price_fen, "agreement", today=today)


def negotiate(actor, listing: Listing, applicant: Applicant, price_fen: int, seller_ref: str,
              today: dt.date | None = None):
    """After failed re-announcements: open negotiation (协商) with an interested party at the
    price the parties agree (art 39), on the seller's written agreement."""
    today = today or clock.today()
    if listing.status != "negotiation":
        raise DomainError(STATE, status=STATUS_LABELS[listing.status])
    if not fen_ok(price_fen) or not (seller_ref or "").strip():
        raise DomainError(NEGOTIATION_REF)
    a = Application(listing_id=listing.id, applicant_id=applicant.id, status="qualified",
                    registered_on=today)
    db.session.add(a)
    db.session.flush()
    audit.record(actor, "market.negotiation", "market_application", a.id,
                 {"applicant": applicant.id, "price_fen": price_fen, "seller": seller_ref})
    return make_award(actor, listing, a.id, price_fen, "negotiation", today=today,
                      seller_ref=seller_ref.strip())


def tender_of(listing: Listing):
    return db.session.scalar(select(Tender).where(Tender.listing_id == listing.id))
