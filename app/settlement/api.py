"""JSON API: settlement applications and decisions, the compliance report (the withdrawal
API is app/withdrawal/api.py).

Request bodies accept unknown properties on purpose: they are handed to the rights guard, so an
attempt to attach a surrender of a right is refused with the law and recorded, not just
rejected as malformed."""
import base64
import binascii

from flask import abort
from flask_login import current_user
from flask_smorest import Blueprint
from marshmallow import INCLUDE, Schema, fields, validate

from app.access import Scope, access, jurisdiction_like, require_scope
from app.extensions import db
from app.people import operations as people
from app.people.models import Person
from app.security import bound_lengths

from . import compliance
from . import operations as ops
from .models import SettlementApplication, SettlementTown
from .views import AUDITORS, OFFICERS, READERS, application_scope

blp = Blueprint("api_settlement", __name__, url_prefix="/settlement",
                description="Settlement in town (进城落户): applications, documents, decisions; "
                            "the compliance report")


class MemberSchema(Schema):
    person_id = fields.Int()
    name = fields.Function(lambda m: m.person.name)
    id_number = fields.Function(lambda m: m.person.id_masked)
    relation = fields.Str()
    from_division_code = fields.Str(allow_none=True)


class ApplicationSchema(Schema):
    id = fields.Int()
    applicant = fields.Function(lambda a: a.applicant.name)
    town = fields.Function(lambda a: a.town.name)
    basis = fields.Str()
    destination = fields.Str()
    destination_address = fields.Str()
    status = fields.Str()
    decided_by = fields.Str(allow_none=True)
    decided_at = fields.DateTime(allow_none=True)
    conditions = fields.List(fields.Str(), allow_none=True)
    refusal_reasons = fields.List(fields.Str(), allow_none=True)
    members = fields.List(fields.Nested(MemberSchema))
    documents = fields.Function(lambda a: [{"doc_type": d.doc_type, "filename": d.filename,
                                            "sha256": d.sha256} for d in a.documents])


class NewMember(Schema):
    class Meta:
        unknown = INCLUDE  # handed to the rights guard

    id_number = fields.Str(required=True)
    relation = fields.Str(required=True)
    unmarried = fields.Bool(load_default=None)
    lives_with_applicant = fields.Bool(load_default=True)


class NewApplication(Schema):
    class Meta:
        unknown = INCLUDE  # handed to the rights guard

    applicant_id_number = fields.Str(required=True)
    town_id = fields.Int(required=True)
    members = fields.List(fields.Nested(NewMember), load_default=list)
    basis = fields.Str(required=True)
    residence_address = fields.Str(required=True)
    destination = fields.Str(required=True)
    destination_address = fields.Str(required=True)
    police_station = fields.Str(load_default=None)
    property_certificate_no = fields.Str(load_default=None)
    purchase_contract_no = fields.Str(load_default=None)
    living_there = fields.Bool(load_default=False)
    rental_registration_no = fields.Str(load_default=None)
    employer_name = fields.Str(load_default=None)
    residence_permit_number = fields.Str(load_default=None)


bound_lengths(NewApplication, SettlementApplication)


class Decision(Schema):
    class Meta:
        unknown = INCLUDE

    outcome = fields.Str(required=True, validate=validate.OneOf(("approve", "reject")))
    conditions = fields.List(fields.Str(), load_default=list)
    reasons = fields.List(fields.Str(), load_default=list)
    note = fields.Str(load_default=None)


class NewDocument(Schema):
    doc_type = fields.Str(required=True)
    filename = fields.Str(required=True)
    content_base64 = fields.Str(required=True)


KNOWN = set(NewApplication().fields)
MEMBER_KNOWN = set(NewMember().fields)


def _person(number: str) -> Person:
    p = people.person_with_id_number(number)
    if p is None:
        abort(404, f"no person with ID number {number}")
    return p


@blp.route("")
@access(*READERS)
@blp.response(200, ApplicationSchema(many=True))
def list_applications():
    return ops.applications(jurisdiction_like(current_user), 1000)


@blp.route("", methods=["POST"])
@access(*OFFICERS)
@blp.arguments(NewApplication)
@blp.response(201, ApplicationSchema)
def create_application(args):
    ops.guard_fields(current_user, args, KNOWN)
    for m in args["members"]:
        ops.guard_fields(current_user, m, MEMBER_KNOWN)
    applicant = _person(args["applicant_id_number"])
    require_scope(Scope([applicant.hukou_division_code or ""]), OFFICERS)
    members = [{"person_id": _person(m["id_number"]).id, "relation": m["relation"],
                "unmarried": m["unmarried"], "lives_with_applicant": m["lives_with_applicant"]}
               for m in args["members"]]
    permit = ops.permit_by_number(args["residence_permit_number"])
    fields_ = {k: args[k] for k in ops.APPLICATION_FIELDS if k in args}
    fields_["residence_permit_id"] = permit.id if permit else None
    a = ops.apply(current_user, applicant, db.session.get(SettlementTown, args["town_id"]),
                  members, **fields_)
    db.session.commit()
    return a


@blp.route("/<int:application_id>")
@access(*READERS, scope=application_scope)
@blp.response(200, ApplicationSchema)
def get_application(application_id: int):
    return db.session.get(SettlementApplication, application_id)


@blp.route("/<int:application_id>/documents", methods=["POST"])
@access(*OFFICERS, scope=application_scope)
@blp.arguments(NewDocument)
@blp.response(201, ApplicationSchema)
def add_document(args, application_id: int):
    a = db.session.get(SettlementApplication, application_id)
    try:
        data = base64.b64decode(args["content_base64"], validate=True)
    except (binascii.Error, ValueError):
        abort(400, "content_base64 is not base64")
    ops.add_document(current_user, a, args["doc_type"], args["filename"], data)
    db.session.commit()
    return a


@blp.route("/<int:application_id>/decision", methods=["POST"])
@access(*OFFICERS, scope=application_scope)
@blp.arguments(Decision)
@blp.response(200, ApplicationSchema)
def decide(args, application_id: int):
    a = db.session.get(SettlementApplication, application_id)
    ops.guard_fields(current_user, args, ("outcome", "conditions", "reasons", "note"), a.id)
    if args["outcome"] == "approve":
        ops.approve(current_user, a, args["conditions"], args["note"])
    else:
        ops.reject(current_user, a, args["reasons"], args["note"])
    db.session.commit()
    return a


@blp.route("/compliance")
@access(*AUDITORS)
def compliance_report():
    r = compliance.report(jurisdiction_like(current_user), None)
    s = r["settled"]
    return {"settled": {k: (float(v) if hasattr(v, "as_integer_ratio") and not
                            isinstance(v, int) else v) for k, v in s._mapping.items()},
            "withdrawals": [{"id": w.id, "household": w.household_code, "right": w.right_kind,
                             "started_on": w.started_on.isoformat(), "status": w.status,
                             "flagged": w.flagged, "settled_on": w.settled_on.isoformat()
                             if w.settled_on else None, "days_after_settlement": w.days_after}
                            for w in r["withdrawals"]],
            "refusals": [{"seq": x.seq, "at": x.at.isoformat(), "actor": x.actor_name,
                          "action": x.action, "details": x.changes} for x in r["refusals"]],
            "coercion_reports": r["reports"]}
