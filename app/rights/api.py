"""The JSON API of the rights register (issue 19): read, register a land-contract right, end a
right on a lawful ground with its proof — the same operations as the pages, the same rules."""
from flask import abort
from flask_login import current_user
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from app.access import Scope, access, jurisdiction_like, require_scope
from app.extensions import db
from app.pagination import PageArgs, page_schema, paginate

from . import operations as ops
from .models import LAWFUL_END_GROUNDS

blp = Blueprint("api_rights", __name__, url_prefix="/rights",
                description="Rights (承包经营权, 宅基地使用权, 土地经营权): read, register, end")
READERS = ("collective_officer", "bureau_staff", "exchange_operator", "auditor")
WRITERS = ("bureau_staff",)


def right_scope(right_uid: int, **_) -> Scope | None:
    r = ops.current_version(right_uid)
    if r is None:
        return None
    return Scope([r.fbfbm or ""], {r.holder_household_code} if r.holder_household_code
                 else set(), {r.holder_person_id} if r.holder_person_id else set())


class RightParcelSchema(Schema):
    parcel_uid = fields.Int()
    parcel_code = fields.Str()
    contract_area = fields.Decimal(as_string=True, allow_none=True)


class RightSchema(Schema):
    id = fields.Int()
    uid = fields.Int()
    version = fields.Int()
    kind = fields.Str()
    holder_household_code = fields.Str(allow_none=True)
    holder_name = fields.Str(allow_none=True)
    contract_code = fields.Str(allow_none=True)
    obtained_by = fields.Str(allow_none=True)
    fbfbm = fields.Str(allow_none=True)
    term_start = fields.Date(allow_none=True)
    term_end = fields.Date(allow_none=True)
    contract_area = fields.Decimal(as_string=True, allow_none=True)
    status = fields.Str()
    end_ground = fields.Str(allow_none=True)
    ended_on = fields.Date(allow_none=True)
    change_reason = fields.Str(allow_none=True)
    parcels = fields.List(fields.Nested(RightParcelSchema))


class RightDetail(RightSchema):
    versions = fields.List(fields.Nested(RightSchema))


class RightQuery(PageArgs):
    household_code = fields.Str(load_default=None, validate=validate.Regexp(r"^[0-9]{1,18}$"))
    fbfbm = fields.Str(load_default=None, validate=validate.Regexp(r"^[0-9]{1,14}$"))
    parcel_uid = fields.Int(load_default=None, validate=validate.Range(min=1, max=2**62))
    kind = fields.Str(load_default=None,
                      validate=validate.OneOf(["land_contract", "homestead", "management"]))
    status = fields.Str(load_default=None, validate=validate.OneOf(["current", "ended"]))


class RegisterArgs(Schema):
    household_code = fields.Str(required=True, validate=validate.Regexp(r"^[0-9]{18}$"))
    contract_code = fields.Str(required=True, validate=validate.Regexp(r"^[0-9]{18}J$"))
    parcel_codes = fields.List(fields.Str(validate=validate.Length(min=1, max=28)),
                               required=True, validate=validate.Length(min=1, max=200))
    term_start = fields.Date(required=True)
    term_end = fields.Date(required=True)
    obtained_by = fields.Str(load_default="110", validate=validate.Regexp(r"^[0-9]{3}$"))
    reason = fields.Str(required=True, validate=validate.Length(min=2, max=500))


class RightEndArgs(Schema):
    ground = fields.Str(required=True, metadata={
        "description": "one of " + ", ".join(LAWFUL_END_GROUNDS)})
    ended_on = fields.Date(required=True)
    evidence = fields.Str(load_default=None, validate=validate.Length(max=2000))
    record_id = fields.Int(load_default=None, validate=validate.Range(min=1, max=2**31 - 1),
                           metadata={"description": "the court judgment, expropriation, "
                                                    "withdrawal or parcel mutation behind it"})
    reason = fields.Str(required=True, validate=validate.Length(min=2, max=500))


def _detail(r):
    from types import SimpleNamespace

    return SimpleNamespace(**{f: getattr(r, f) for f in RightSchema._declared_fields},
                           versions=ops.versions(r.uid))


@blp.route("")
@access("farmer", *READERS)
@blp.arguments(RightQuery, location="query")
@blp.response(200, page_schema(RightSchema, "RightPage"))
def list_rights(args):
    farmer = (current_user.household_code or "-") if current_user.role == "farmer" else None
    return paginate(ops.search_query(jurisdiction_like(current_user), args["household_code"],
                                     args["fbfbm"], args["parcel_uid"], args["kind"],
                                     args["status"], farmer), args)


@blp.route("/<int:right_uid>")
@access("farmer", *READERS, scope=right_scope)
@blp.response(200, RightDetail)
def read(right_uid: int):
    return _detail(ops.current_version(right_uid))


@blp.route("/land-contracts", methods=["POST"])
@access(*WRITERS)
@blp.arguments(RegisterArgs)
@blp.response(201, RightDetail)
def register(args):

    require_scope(Scope([args["household_code"][:14]]))
    r = ops.register_land_contract(current_user, args["household_code"], args["contract_code"],
                                   ops.current_parcels(args["parcel_codes"]), args["term_start"],
                                   args["term_end"], args["obtained_by"], args["reason"])
    db.session.commit()
    return _detail(r)


@blp.route("/<int:right_uid>/end", methods=["POST"])
@access(*WRITERS, scope=right_scope)
@blp.arguments(RightEndArgs)
@blp.response(200, RightDetail)
def end(args, right_uid: int):
    r = ops.current_version(right_uid)
    if r is None:
        abort(404)
    r = ops.end_right(current_user, r, args["ground"], args["ended_on"], args["evidence"],
                      args["reason"], record=args["record_id"])
    db.session.commit()
    return _detail(r)
