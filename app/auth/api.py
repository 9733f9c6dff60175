from flask_login import current_user
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from app.access import ROLES, access

blp = Blueprint("api_me", __name__, url_prefix="/me", description="The signed-in account")


class MeSchema(Schema):
    id = fields.Int()
    username = fields.Str()
    display_name = fields.Str()
    role = fields.Str()
    jurisdiction_code = fields.Str(allow_none=True)
    household_code = fields.Str(allow_none=True)


@blp.route("")
@access(*ROLES)
@blp.response(200, MeSchema)
def me():
    return current_user
