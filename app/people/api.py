from flask_login import current_user
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from app.access import Scope, access, jurisdiction_like
from app.extensions import db
from app.pagination import page_schema, paginate

from . import operations as ops
from . import operations as people_ops
from .models import Household, Person
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


# ---------------------------------------------------------------------------------------------
# Households and their members (issue 19)

hblp = Blueprint("api_households", __name__, url_prefix="/households",
                 description="Households (承包方) and their members (ID numbers masked)")


def household_scope(household_id: int, **_):

    h = db.session.get(Household, household_id)
    if h is None:
        return None
    return Scope([h.cbfbm[:14]], {h.cbfbm}, set())


class HouseholdMemberSchema(Schema):
    id = fields.Int()
    person_id = fields.Int()
    person = fields.Nested(PersonSchema)
    relation = fields.Str()
    is_coholder = fields.Bool()
    joined_on = fields.Date(allow_none=True)
    left_on = fields.Date(allow_none=True)
    end_ground = fields.Str(allow_none=True)


class HouseholdSchema(Schema):
    id = fields.Int()
    cbfbm = fields.Str()
    cbflx = fields.Str()
    name = fields.Str()
    collective_id = fields.Int()
    ended_on = fields.Date(allow_none=True)
    end_ground = fields.Str(allow_none=True)


class HouseholdDetail(HouseholdSchema):
    members = fields.List(fields.Nested(HouseholdMemberSchema))


class HouseholdQuery(Schema):
    q = fields.Str(load_default="", validate=validate.Length(max=100),
                   metadata={"description": "household code prefix or name"})
    page = fields.Int(load_default=1, validate=validate.Range(min=1, max=100_000))
    per_page = fields.Int(load_default=50, validate=validate.Range(min=1, max=500))
    include_ended = fields.Bool(load_default=False)


@hblp.route("")
@access(*STAFF)
@hblp.arguments(HouseholdQuery, location="query")
@hblp.response(200, page_schema(HouseholdSchema, "HouseholdPage"))
def list_households(args):

    return paginate(people_ops.households_query(jurisdiction_like(current_user), args["q"],
                                                args["include_ended"]), args)


@hblp.route("/<int:household_id>")
@access("farmer", *STAFF, scope=household_scope)
@hblp.response(200, HouseholdDetail)
def get_household(household_id: int):

    h = db.session.get(Household, household_id)
    from types import SimpleNamespace

    return SimpleNamespace(**{f: getattr(h, f) for f in HouseholdSchema._declared_fields},
                           members=people_ops.members_of(h))
