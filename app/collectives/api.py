from flask_login import current_user
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from app.access import access, jurisdiction_like
from app.extensions import db

from . import operations as ops
from .models import Collective, Membership
from .views import READERS, WRITERS, collective_scope, membership_scope

blp = Blueprint("api_collectives", __name__, url_prefix="/collectives",
                description="Collective economic organisations and their membership rolls")


class CollectiveSchema(Schema):
    id = fields.Int()
    fbfbm = fields.Str()
    name = fields.Str()
    village_code = fields.Str()


class MembershipSchema(Schema):
    id = fields.Int()
    person_id = fields.Int()
    person_name = fields.Function(lambda m: m.person.name)
    status = fields.Str()
    basis = fields.Str()
    began_on = fields.Date()
    ended_on = fields.Date(allow_none=True)
    end_ground = fields.Str(allow_none=True)


class EndArgs(Schema):
    ground = fields.Str(required=True, metadata={"description": "one of " + ", ".join(
        ops.LAWFUL_END_GROUNDS)})
    ended_on = fields.Date(required=True)
    note = fields.Str(load_default=None)
    reason = fields.Str(required=True, validate=validate.Length(min=1, max=500))
    law = fields.Str(load_default=None, metadata={
        "description": "law_or_charter: a named law, one of " + ", ".join(ops.NAMED_LAWS)})
    article = fields.Str(load_default=None, validate=validate.Length(max=20),
                         metadata={"description": "law_or_charter: the article of that law"})
    charter_clause_id = fields.Int(load_default=None, metadata={
        "description": "law_or_charter: a membership-ending clause of the charter register"})


@blp.route("")
@access(*READERS)
@blp.response(200, CollectiveSchema(many=True))
def list_collectives():
    return ops.collectives(jurisdiction_like(current_user))


@blp.route("/<int:collective_id>/members")
@access(*READERS, scope=collective_scope)
@blp.response(200, MembershipSchema(many=True))
def list_members(collective_id: int):
    return ops.roll(db.session.get(Collective, collective_id), include_ended=True)


@blp.route("/<int:collective_id>/members/<int:membership_id>/end", methods=["POST"])
@access(*WRITERS, scope=membership_scope)
@blp.arguments(EndArgs)
@blp.response(200, MembershipSchema)
def end_member(args, collective_id: int, membership_id: int):
    m = db.session.get(Membership, membership_id)
    ops.end_membership(current_user, m, args["ground"], args["ended_on"], args["note"],
                       reason=args["reason"], law=args["law"], article=args["article"],
                       charter_clause=args["charter_clause_id"])
    db.session.commit()
    return m
