"""JSON API: the certificate register, one certificate, reissue / replacement / cancellation,
and public verification."""
from flask_login import current_user
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from app.access import Scope, access, jurisdiction_like, require_scope
from app.extensions import db
from app.rights import operations as rights

from . import operations as ops
from .models import Certificate
from .views import ISSUERS, READERS, certificate_scope

blp = Blueprint("api_certificates", __name__, url_prefix="/certificates",
                description="Certificates (land-contract right certificates, homestead entries)")


class CertificateSchema(Schema):
    id = fields.Int()
    kind = fields.Str()
    number = fields.Str()
    edition = fields.Int()
    issue_kind = fields.Str()
    status = fields.Str()
    right_uid = fields.Int()
    household_code = fields.Str(allow_none=True)
    holder = fields.Function(lambda c: c.content["holder"]["name"])
    authority = fields.Str()
    issued_by = fields.Str()
    issued_at = fields.DateTime()
    replaces_id = fields.Int(allow_none=True)
    ended_at = fields.DateTime(allow_none=True)
    end_reason = fields.Str(allow_none=True)
    end_ground = fields.Str(allow_none=True)
    end_reference = fields.Str(allow_none=True)
    verify_url = fields.Function(lambda c: c.content["verify_url"])
    content_sha256 = fields.Str()


class VerifySchema(Schema):
    """Masked: the number (= the household code) and parcel codes would name the household."""
    number = fields.Str()
    edition = fields.Int()
    kind = fields.Str()
    status = fields.Str()
    holder = fields.Str()
    authority = fields.Str()
    issued_on = fields.Raw()
    parcels = fields.List(fields.Dict())


class ListArgs(Schema):
    q = fields.Str(load_default="")
    status = fields.Str(load_default=None, validate=validate.OneOf(
        ("valid", "superseded", "cancelled")))
    campaign = fields.Int(load_default=None)


class IssueArgs(Schema):
    right_uid = fields.Int(required=True)
    reason = fields.Str(load_default=None)


class ActionArgs(Schema):
    action = fields.Str(required=True, validate=validate.OneOf(("reissue", "replace", "cancel")))
    reason = fields.Str(required=True, validate=validate.Length(min=1, max=500))
    ground = fields.Str(load_default=None)  # cancellation: right_ended | error_corrected
    reference = fields.Str(load_default=None, validate=validate.Length(max=100))


@blp.route("")
@access(*READERS)
@blp.arguments(ListArgs, location="query")
@blp.response(200, CertificateSchema(many=True))
def list_certificates(args):
    return ops.register_rows(jurisdiction_like(current_user), args["q"], args["status"],
                             args["campaign"], limit=5000)


@blp.route("", methods=["POST"])
@access(*ISSUERS)
@blp.arguments(IssueArgs)
@blp.response(201, CertificateSchema)
def issue(args):
    from flask import abort

    right = rights.current_version(args["right_uid"])
    if right is None:
        abort(404)
    require_scope(Scope([right.fbfbm]), ISSUERS)
    cert = ops.issue(current_user, right, base=ops.base_url(), reason=args["reason"])
    db.session.commit()
    return cert


@blp.route("/<int:certificate_id>")
@access("farmer", *READERS, scope=certificate_scope)
@blp.response(200, CertificateSchema)
def get_certificate(certificate_id: int):
    return db.session.get(Certificate, certificate_id)


@blp.route("/<int:certificate_id>/actions", methods=["POST"])
@access(*ISSUERS, scope=certificate_scope)
@blp.arguments(ActionArgs)
@blp.response(200, CertificateSchema)
def act(args, certificate_id: int):
    """Reissue (补发), replace (换发) or cancel (注销); answers with the resulting edition."""
    c = db.session.get(Certificate, certificate_id)
    if args["action"] == "cancel":
        out = ops.cancel(current_user, c, args["reason"], args["ground"], args["reference"])
    elif args["action"] == "reissue":
        out = ops.reissue(current_user, c, args["reason"], ops.base_url())
    else:
        out = ops.replace(current_user, c, args["reason"], ops.base_url())
    db.session.commit()
    return out


@blp.route("/verify/<token>")
@access(public=True)
@blp.response(200, VerifySchema)
def verify(token: str):
    """What the QR code's page shows, for machines: status and masked particulars."""
    from flask import abort

    c = ops.by_token(token)
    if c is None:
        abort(404)
    return ops.public_particulars(c)
