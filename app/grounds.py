"""Refusals that are evidence, and closed lists of lawful grounds (membership ends, rights end).

A refused attempt to break a rule of the rights guard is recorded in the audit log before it is
raised (domain.md §9 rule 5: every attempt is recorded), in its own commit so that it stays
even though the operation fails."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l

from app import guardtext
from app.audit import operations as audit
from app.errors import DomainError, Rule
from app.extensions import db


def refuse(actor, error: DomainError, action: str, obj_type: str, obj_id,
           changes: dict | None = None, reason: str | None = None):
    """Record the refused attempt, commit the record, raise the error."""
    audit.record(actor, action, obj_type, obj_id, {**(changes or {}), "rule": error.code},
                 reason)
    db.session.commit()
    raise error


def lawful_ground(actor, ground: str | None, lawful: tuple[str, ...], forbidden: dict,
                  forbidden_rule: Rule, unknown_rule: Rule, action: str, obj_type: str,
                  obj_id, reason: str | None = None) -> str:
    """The stripped ground when it is on the lawful list; otherwise record and refuse."""
    ground = (ground or "").strip()
    if ground in lawful:
        return ground
    if ground in forbidden:
        refused = DomainError(forbidden_rule, ground=forbidden[ground])
    else:
        refused = DomainError(unknown_rule, ground=ground)
    refuse(actor, refused, action, obj_type, obj_id, {"ground": ground}, reason)


ART27_55_17 = _l("农村土地承包法 (Rural Land Contracting Law) art 27; 乡村振兴促进法 (Rural "
                 "Revitalisation Promotion Law) art 55; 农村集体经济组织法 (Rural Collective "
                 "Economic Organisations Law) art 17; source document item 14")
DISGUISED = Rule(
    "guard.text",
    _l("%(field)s says \"%(word)s\": giving up the land-contract right, the homestead right or "
       "the collective income-distribution right may not be made a condition of settling in "
       "town, and settling in town, moving the hukou or living elsewhere ends no right and no "
       "membership. The text is refused and the attempt recorded."), ART27_55_17)


FIELD_LABELS = {
    "note": _l("The note"), "reason": _l("The reason"), "reasons": _l("The reason"),
    "filename": _l("The file name"), "statement_name": _l("The file name"),
    "document_name": _l("The file name"),
    "address": _l("The address"), "residence_address": _l("The residence address"),
    "destination_address": _l("The destination address"), "employer_name": _l("The employer"),
    "police_station": _l("The police station"), "reference": _l("The reference"),
    "evidence": _l("The evidence"),
    "interview": _l("The interview record"), "transferee": _l("The transferee"),
    "number": _l("The number"), "property_certificate_no": _l("The number"),
    "purchase_contract_no": _l("The number"), "rental_registration_no": _l("The number"),
    "title": _l("The title"), "transferee_conditions": _l("The conditions on the transferee"),
    "use_description": _l("The description of the use"),
    "asset_description": _l("The description of the asset"),
    "payment_schedule": _l("The payment schedule"),
    "farming_capacity": _l("The farming capacity"), "plan": _l("The plan"),
    "resolution_ref": _l("The resolution reference"),
    "issuing_party_consent_ref": _l("The issuing party's consent reference"),
    "statement": _l("The applicant's statement"), "text": _l("The objection"),
    "remarks": _l("The remarks"), "DKBZXX": _l("The remarks"),
    "resolution": _l("The resolution"),
}


def guard_text(actor, policy: str, fields: dict, action: str, obj_type: str, obj_id,
               rule: Rule = DISGUISED, reason: str | None = None) -> None:
    """Free text through the rights guard's detector (app.guardtext): a wording that `policy`
    refuses is recorded (field, words, the text) and refused with the law cited."""
    found = guardtext.first_hit(policy, fields)
    if found is None:
        return
    field, hit = found
    value = fields[field]
    label = FIELD_LABELS.get(field, field)
    refuse(actor, DomainError(rule, field=label, word=hit.word, what=f"'{hit.word}'"), action,
           obj_type, obj_id, {"field": field, "words": hit.word, "group": hit.group,
                              "matched_as": hit.form, "text": str(value)[:500],
                              "policy": policy}, reason)
