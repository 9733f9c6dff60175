"""JSON API of the voluntary, paid withdrawal pilot (自愿有偿退出); same URLs as before
(/api/v1/withdrawals...). Unknown body properties are accepted on purpose: they go to the rights
guard."""
from flask import abort
from flask_login import current_user
from flask_smorest import Blueprint
from marshmallow import INCLUDE, Schema, fields, validate

from app.access import access
from app.extensions import db
from app.rights import operations as rights

from . import operations as ops
from .models import Withdrawal
from .operations import withdrawal_scope

wblp = Blueprint("api_withdrawals", __name__, url_prefix="/withdrawals",
                 description="The voluntary, paid withdrawal pilot (自愿有偿退出), started by the "
                             "right holder")


class WithdrawalSchema(Schema):
    id = fields.Int()
    right_uid = fields.Int()
    right_kind = fields.Str()
    household_code = fields.Str()
    started_by = fields.Str()
    started_via = fields.Str()
    started_on = fields.Date()
    status = fields.Str()
    flagged = fields.Bool()
    cooling_until = fields.Date()
    compensation = fields.Decimal(as_string=True, allow_none=True)
    paid_on = fields.Date(allow_none=True)
    effective_on = fields.Date(allow_none=True)


class NewWithdrawal(Schema):
    class Meta:
        unknown = INCLUDE

    right_uid = fields.Int(required=True)
    land_to = fields.Str(load_default="collective", validate=validate.OneOf(("collective",
                                                                              "within")))
    transferee = fields.Str(load_default=None)


@wblp.route("", methods=["POST"])
@access("farmer")
@wblp.arguments(NewWithdrawal)
@wblp.response(201, WithdrawalSchema)
def start(args):
    """The holder starts a withdrawal of their own right from their own account."""
    right = rights.current_version(args["right_uid"])
    if right is None:
        abort(404)
    w = ops.start(current_user, right, "own_account", args["land_to"],
                          args["transferee"], settlement_id=args.get("settlement_id"))
    db.session.commit()
    return w


@wblp.route("/<int:withdrawal_id>")
@access("farmer", "bureau_staff", "collective_officer", "auditor", scope=withdrawal_scope)
@wblp.response(200, WithdrawalSchema)
def get_withdrawal(withdrawal_id: int):
    return db.session.get(Withdrawal, withdrawal_id)


@wblp.route("/<int:withdrawal_id>/revoke", methods=["POST"])
@access("farmer", "bureau_staff", "collective_officer", scope=withdrawal_scope)
@wblp.response(200, WithdrawalSchema)
def revoke(withdrawal_id: int):
    w = db.session.get(Withdrawal, withdrawal_id)
    ops.revoke(current_user, w)
    db.session.commit()
    return w
