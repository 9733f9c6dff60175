from flask_login import current_user
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from app.access import access, jurisdiction_like
from app.extensions import db

from . import operations as ops
from .models import Person
from .scopes import person_scope

blp = Blueprint("api_persons", __name__, url_prefix="/persons",
                description="Persons (ID numbers and phones masked)")
STAFF = ("collective_officer", "bureau_staff", "hukou_officer", "auditor")


class PersonSchema(Schema):
    id = fields.Int()
    name = fields.Str()
    id_number = fields.Str(attribute="id_masked", metadata={"description": "masked"})
    sex = fields.Str()
    # The year only: beside a masked ID number a full birth date helps rebuild it.
    birth_year = fields.Function(lambda p: p.birth_date.year if p.birth_date else None)
    hukou_division_code = fields.Str(allow_none=True)
    phone = fields.Str(attribute="phone_masked")


class PersonQuery(Schema):
    q = fields.Str(load_default="", validate=validate.Length(max=100))
    page = fields.Int(load_default=1, validate=validate.Range(min=1, max=100_000))
    per_page = fields.Int(load_default=50, validate=validate.Range(min=1, max=500))


class PersonPage(Schema):
    total = fields.Int()
    page = fields.Int()
    items = fields.List(fields.Nested(PersonSchema))


@blp.route("")
@access(*STAFF)
@blp.arguments(PersonQuery, location="query")
@blp.response(200, PersonPage)
def list_persons(args):
    per = max(1, min(args["per_page"], 500))
    page = max(1, args["page"])
    total, items = ops.persons_page(jurisdiction_like(current_user), None, args["q"] or None,
                                    page, per)
    return {"total": total, "page": page, "items": items}


@blp.route("/<int:person_id>")
@access("farmer", *STAFF, scope=person_scope)
@blp.response(200, PersonSchema)
def get_person(person_id: int):
    return db.session.get(Person, person_id)
