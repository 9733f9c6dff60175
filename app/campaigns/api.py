"""JSON API: campaigns, notice, objections, registration, batch certificate issuance."""
from flask import url_for
from flask_login import current_user
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from app.access import Scope, access, jurisdiction_like, require_scope
from app.certificates import operations as certificates
from app.errors import DomainError
from app.extensions import db
from app.security import bound_lengths

from . import operations as ops
from .models import Campaign, Objection
from .views import READERS, STAFF, campaign_scope, objection_scope

blp = Blueprint("api_campaigns", __name__, url_prefix="/campaigns",
                description="Rights-confirmation campaigns (确权): public notice, objections, "
                            "registration (登簿), certificate batches")


class ObjectionSchema(Schema):
    id = fields.Int()
    parcel_code = fields.Str(allow_none=True)
    subject = fields.Str()
    text = fields.Str()
    lodged_by = fields.Str()
    lodged_at = fields.DateTime()
    status = fields.Str()
    resolution = fields.Str(allow_none=True)
    resolved_by = fields.Str(allow_none=True)
    correction_parcel_id = fields.Int(allow_none=True)


class CampaignSchema(Schema):
    id = fields.Int()
    fbfbm = fields.Str()
    import_batch_id = fields.Int(allow_none=True)
    status = fields.Str()
    notice_start = fields.Date(allow_none=True)
    notice_end = fields.Date(allow_none=True)
    registrar = fields.Str(allow_none=True)
    registered_at = fields.DateTime(allow_none=True)
    progress = fields.Function(lambda c: ops.progress(c))
    objections = fields.List(fields.Nested(ObjectionSchema))


class CampaignSummarySchema(CampaignSchema):
    class Meta:
        exclude = ("objections",)


class OpenArgs(Schema):
    fbfbm = fields.Str(required=True, validate=validate.Regexp(r"^\d{14}$"))
    import_batch_id = fields.Int(load_default=None)
    reason = fields.Str(required=True, validate=validate.Length(min=1, max=500))


class NoticeArgs(Schema):
    start = fields.Date(load_default=None)
    days = fields.Int(load_default=None, validate=validate.Range(min=1, max=90))


class ObjectionArgs(Schema):
    subject = fields.Str(required=True, validate=validate.OneOf(ops.SUBJECTS))
    text = fields.Str(required=True, validate=validate.Length(min=1, max=2000))
    lodged_by = fields.Str(load_default=None, validate=validate.Length(max=100))
    parcel_code = fields.Str(load_default=None)


bound_lengths(ObjectionArgs, Objection)


class ResolveArgs(Schema):
    outcome = fields.Str(required=True, validate=validate.OneOf(("upheld", "dismissed")))
    resolution = fields.Str(required=True, validate=validate.Length(min=1, max=2000))


class JobSchema(Schema):
    job = fields.Int()
    status = fields.Str()
    progress_url = fields.Str()


@blp.route("")
@access(*READERS)
@blp.response(200, CampaignSummarySchema(many=True))
def list_campaigns():
    return ops.campaigns(jurisdiction_like(current_user), 500)


@blp.route("", methods=["POST"])
@access(*STAFF)
@blp.arguments(OpenArgs)
@blp.response(201, CampaignSchema)
def open_campaign(args):
    require_scope(Scope([args["fbfbm"]]), STAFF)
    c = ops.open_campaign(current_user, args["fbfbm"], args["import_batch_id"], args["reason"])
    db.session.commit()
    return c


@blp.route("/<int:campaign_id>")
@access(*READERS, scope=campaign_scope)
@blp.response(200, CampaignSchema)
def get_campaign(campaign_id: int):
    return db.session.get(Campaign, campaign_id)


@blp.route("/<int:campaign_id>/notice", methods=["POST"])
@access(*STAFF, scope=campaign_scope)
@blp.arguments(NoticeArgs)
@blp.response(200, CampaignSchema)
def publish(args, campaign_id: int):
    c = ops.publish_notice(current_user, db.session.get(Campaign, campaign_id), args["start"],
                           args["days"])
    db.session.commit()
    return c


@blp.route("/<int:campaign_id>/objections", methods=["POST"])
@access("farmer", *STAFF, scope=lambda campaign_id, **_: _objector_scope(campaign_id))
@blp.arguments(ObjectionArgs)
@blp.response(201, ObjectionSchema)
def lodge(args, campaign_id: int):
    """Staff record an objection (naming who made it); a farmer lodges their own."""
    c = db.session.get(Campaign, campaign_id)
    if current_user.role == "farmer":
        ops.check_online_objector(current_user, c)
    who = args["lodged_by"] if current_user.role != "farmer" else current_user.display_name
    if not who:
        raise DomainError(ops.BAD_OBJECTION)
    o = ops.lodge_objection(current_user, c, args["subject"], args["text"], who,
                            args["parcel_code"])
    db.session.commit()
    return o


def _objector_scope(campaign_id: int) -> Scope | None:
    c = db.session.get(Campaign, campaign_id)
    if c is None:
        return None
    if current_user.role == "farmer":  # anyone of the group may object during the notice
        hh = current_user.household_code or ""
        return Scope([c.fbfbm], {hh} if hh.startswith(c.fbfbm[:12]) else set())
    return Scope([c.fbfbm])


@blp.route("/<int:campaign_id>/objections/<int:objection_id>/resolve", methods=["POST"])
@access(*STAFF, scope=objection_scope)
@blp.arguments(ResolveArgs)
@blp.response(200, ObjectionSchema)
def resolve(args, campaign_id: int, objection_id: int):
    o = db.session.get(Objection, objection_id)
    if args["outcome"] == "upheld":
        ops.uphold(current_user, o, args["resolution"])
    else:
        ops.dismiss(current_user, o, args["resolution"])
    db.session.commit()
    return o


@blp.route("/<int:campaign_id>/register", methods=["POST"])
@access(*STAFF, scope=campaign_scope)
@blp.response(200, CampaignSchema)
def register(campaign_id: int):
    c = db.session.get(Campaign, campaign_id)
    ops.register(current_user, c)
    db.session.commit()
    return c


@blp.route("/<int:campaign_id>/certificates", methods=["POST"])
@access(*STAFF, scope=campaign_scope)
@blp.response(202, JobSchema)
def issue_certificates(campaign_id: int):
    """Issue every certificate of a registered campaign and render its print package, as a
    background job; poll `progress_url`."""
    job = certificates.start_batch(current_user, db.session.get(Campaign, campaign_id),
                                   certificates.base_url())
    return {"job": job.id, "status": job.status,
            "progress_url": url_for("imports.job_json", job_id=job.id)}
