"""JSON API: membership applications, the members' assembly, notice and objections, the filed
roll, shares and distributions.  Writes need a bearer token (app.rest); refusals are problem
JSON citing the rule and its law."""
from __future__ import annotations

from flask import abort
from flask_login import current_user
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from app.access import Scope, access, jurisdiction_like, require_scope

from . import operations as ops
from . import queries as q
from .views import OFFICERS, READERS, TOWNSHIP, collective_scope, distribution_scope

blp = Blueprint("api_membership", __name__, url_prefix="/membership",
                description="Membership confirmation (成员确认), shares (股份量化) and income "
                            "distribution (收益分配)")

Reason = fields.Str(load_default=None, validate=validate.Length(max=500))


class ApplicationSchema(Schema):
    id = fields.Int()
    person_id = fields.Int()
    person_name = fields.Function(lambda a: a.person.name)
    basis = fields.Str()
    criteria = fields.Dict()
    flags = fields.List(fields.Str())
    status = fields.Str()


class ApplyArgs(Schema):
    person_id = fields.Int(required=True)
    basis = fields.Str(required=True, metadata={"description": ", ".join(ops.BASIS_LABELS)})
    livelihood = fields.Bool(load_default=None)
    special = fields.List(fields.Str(), load_default=list, validate=validate.Length(max=10))
    statement = fields.Str(load_default=None, validate=validate.Length(max=1000))
    reason = Reason


class AssemblyArgs(Schema):
    meeting_date = fields.Date(required=True)
    attendees = fields.List(fields.Int(), required=True, validate=validate.Length(max=200000))
    reason = Reason


class AssemblySchema(Schema):
    id = fields.Int()
    meeting_date = fields.Date()
    members_total = fields.Int()
    vote_num = fields.Int()
    vote_den = fields.Int()
    needed = fields.Int()


class ResolutionArgs(Schema):
    application_id = fields.Int(required=True)
    yes = fields.Int(required=True, validate=validate.Range(min=0, max=10 ** 6))
    no = fields.Int(required=True, validate=validate.Range(min=0, max=10 ** 6))
    abstain = fields.Int(required=True, validate=validate.Range(min=0, max=10 ** 6))
    decision = fields.Str(required=True, validate=validate.OneOf(("admit", "reject")))
    reason = Reason


class ResolutionSchema(Schema):
    id = fields.Int()
    application_id = fields.Int()
    yes = fields.Int()
    no = fields.Int()
    abstain = fields.Int()
    decision = fields.Str()


class NoticeArgs(Schema):  # posted today on the app clock: no client-chosen date
    reason = Reason


class NoticeSchema(Schema):
    id = fields.Int()
    collective_id = fields.Int()
    posted_on = fields.Date()
    ends_on = fields.Date()
    status = fields.Str()
    filed_on = fields.Date(allow_none=True)
    roll_size = fields.Int(allow_none=True)
    pdf_sha256 = fields.Str(allow_none=True)


class ObjectionArgs(Schema):
    objector = fields.Str(required=True, validate=validate.Length(min=1, max=50))
    text = fields.Str(required=True, validate=validate.Length(min=1, max=2000))
    application_id = fields.Int(load_default=None)  # lodged today on the app clock


class ResolveArgs(Schema):
    resolution = fields.Str(required=True, validate=validate.OneOf(("upheld", "dismissed")))
    reasons = fields.Str(required=True, validate=validate.Length(min=1, max=2000))


class ObjectionSchema(Schema):
    id = fields.Int()
    application_id = fields.Int(allow_none=True)
    text = fields.Str()
    lodged_on = fields.Date()
    resolution = fields.Str(allow_none=True)
    reasons = fields.Str(allow_none=True)


class FileArgs(Schema):  # filed today on the app clock: no client-chosen date
    reason = Reason


class QuantifyArgs(Schema):
    base_date = fields.Date(required=True)
    asset_value_fen = fields.Int(required=True, strict=True,
                                 validate=validate.Range(min=0, max=2 ** 62))
    reason = Reason


class QuantificationSchema(Schema):
    id = fields.Int()
    base_date = fields.Date()
    asset_value_fen = fields.Int()
    member_centi = fields.Int()
    collective_centi = fields.Int()
    management = fields.Str()


class DistributeArgs(Schema):
    amount_fen = fields.Int(required=True, strict=True)
    paid_on = fields.Date(required=True)
    rule = fields.Dict(load_default=None)
    note = fields.Str(load_default=None, validate=validate.Length(max=1000))
    reason = Reason


class PayoutSchema(Schema):
    person_id = fields.Int(allow_none=True)
    household_id = fields.Int(allow_none=True)
    shares_centi = fields.Int()
    amount_fen = fields.Int()


class DistributionSchema(Schema):
    id = fields.Int()
    collective_id = fields.Int()
    amount_fen = fields.Int()
    paid_on = fields.Date()
    status = fields.Str()
    total_centi = fields.Int()
    rule = fields.Dict()


class LedgerSchema(DistributionSchema):
    payouts = fields.Function(lambda d: PayoutSchema(many=True).dump(ops.payouts(d)))


def _collective(collective_id):
    return q.collective(collective_id)


def _assembly(assembly_id):
    a = q.assembly(assembly_id)
    if a is None:
        abort(404)
    require_scope(Scope([a.collective.fbfbm]))
    return a


def _notice(notice_id):
    n = q.notice(notice_id)
    if n is None:
        abort(404)
    require_scope(Scope([n.collective.fbfbm]))
    return n


@blp.route("/collectives/<int:collective_id>/applications")
@access(*READERS, scope=collective_scope)
@blp.response(200, ApplicationSchema(many=True))
def list_applications(collective_id: int):
    return ops.applications(_collective(collective_id))


@blp.route("/collectives/<int:collective_id>/applications", methods=["POST"])
@access(*OFFICERS, scope=collective_scope)
@blp.arguments(ApplyArgs)
@blp.response(201, ApplicationSchema)
def apply(args, collective_id: int):
    person = q.person(args["person_id"])
    if person is None:
        abort(404)
    a = ops.apply(current_user, _collective(collective_id), person, args["basis"],
                  facts={"livelihood": args["livelihood"]}, special=args["special"],
                  statement=args["statement"], reason=args["reason"])
    q.commit()
    return a


@blp.route("/collectives/<int:collective_id>/assemblies", methods=["POST"])
@access(*OFFICERS, scope=collective_scope)
@blp.arguments(AssemblyArgs)
@blp.response(201, AssemblySchema)
def open_assembly(args, collective_id: int):
    a = ops.open_assembly(current_user, _collective(collective_id), args["meeting_date"],
                          args["attendees"], reason=args["reason"])
    q.commit()
    return a


@blp.route("/assemblies/<int:assembly_id>/resolutions", methods=["POST"])
@access(*OFFICERS)
@blp.arguments(ResolutionArgs)
@blp.response(201, ResolutionSchema)
def resolve(args, assembly_id: int):
    a = _assembly(assembly_id)
    app_ = q.membership_application(args["application_id"])
    if app_ is None:
        abort(404)
    r = ops.resolve(current_user, a, app_, args["yes"], args["no"], args["abstain"],
                    args["decision"], reason=args["reason"])
    q.commit()
    return r


@blp.route("/assemblies/<int:assembly_id>/notice", methods=["POST"])
@access(*OFFICERS)
@blp.arguments(NoticeArgs)
@blp.response(201, NoticeSchema)
def post_notice(args, assembly_id: int):
    n = ops.post_notice(current_user, _assembly(assembly_id), reason=args["reason"])
    q.commit()
    return n


@blp.route("/notices/<int:notice_id>/objections", methods=["POST"])
@access(*OFFICERS)
@blp.arguments(ObjectionArgs)
@blp.response(201, ObjectionSchema)
def lodge(args, notice_id: int):
    n = _notice(notice_id)
    app_ = q.membership_application(args["application_id"]) if args["application_id"] else None
    o = ops.lodge_objection(current_user, n, args["objector"], args["text"], app_)
    q.commit()
    return o


@blp.route("/notices/<int:notice_id>/objections/<int:objection_id>/resolution",
           methods=["POST"])
@access(*OFFICERS)
@blp.arguments(ResolveArgs)
@blp.response(200, ObjectionSchema)
def resolve_objection(args, notice_id: int, objection_id: int):
    n = _notice(notice_id)
    o = q.objection(objection_id)
    if o is None or o.notice_id != n.id:
        abort(404)
    ops.resolve_objection(current_user, o, args["resolution"], args["reasons"])
    q.commit()
    return o


@blp.route("/notices/<int:notice_id>/file", methods=["POST"])
@access(*OFFICERS)
@blp.arguments(FileArgs)
@blp.response(200, NoticeSchema)
def file_roll(args, notice_id: int):
    n = ops.file_roll(current_user, _notice(notice_id), reason=args["reason"])
    q.commit()
    return n


@blp.route("/filed-rolls")
@access(*TOWNSHIP)
@blp.response(200, NoticeSchema(many=True))
def filed_rolls():
    return ops.filed_rolls(jurisdiction_like(current_user))


@blp.route("/collectives/<int:collective_id>/quantifications", methods=["POST"])
@access(*OFFICERS, scope=collective_scope)
@blp.arguments(QuantifyArgs)
@blp.response(201, QuantificationSchema)
def quantify(args, collective_id: int):
    qn = ops.quantify(current_user, _collective(collective_id), args["base_date"],
                      args["asset_value_fen"], reason=args["reason"])
    q.commit()
    return qn


@blp.route("/collectives/<int:collective_id>/distributions")
@access(*READERS, scope=collective_scope)
@blp.response(200, DistributionSchema(many=True))
def list_distributions(collective_id: int):
    return ops.distributions(_collective(collective_id))


@blp.route("/collectives/<int:collective_id>/distributions", methods=["POST"])
@access(*OFFICERS, scope=collective_scope)
@blp.arguments(DistributeArgs)
@blp.response(201, DistributionSchema)
def distribute(args, collective_id: int):
    d = ops.distribute(current_user, _collective(collective_id), args["amount_fen"],
                       args["paid_on"], rule=args["rule"], note=args["note"],
                       reason=args["reason"])
    q.commit()
    return d


@blp.route("/distributions")
@access(*READERS)
@blp.response(200, DistributionSchema(many=True))
def every_run():
    """The auditor's view: every run in the jurisdiction."""
    return ops.distributions(like=jurisdiction_like(current_user))


@blp.route("/distributions/<int:distribution_id>")
@access(*READERS, scope=distribution_scope)
@blp.response(200, LedgerSchema)
def ledger(distribution_id: int):
    return q.distribution(distribution_id)


@blp.route("/me")
@access("farmer")
def mine():
    m = ops.my_membership(current_user.person_id) if current_user.person_id else {
        "memberships": [], "holdings": [], "payouts": []}
    return {"memberships": [{"collective_id": x.collective_id, "status": x.status,
                             "basis": x.basis, "began_on": x.began_on.isoformat()}
                            for x in m["memberships"]],
            "shares": [{"quantification_id": h.quantification_id,
                        "shares_centi": h.shares_centi} for h in m["holdings"]],
            "dividends": [{"distribution_id": p["distribution"].id,
                           "paid_on": p["distribution"].paid_on.isoformat(),
                           "amount": p["amount"]} for p in m["payouts"]]}
