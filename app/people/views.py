from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import SelectField, StringField
from wtforms.validators import Length

from app.access import access, jurisdiction_like
from app.collectives import operations as collectives
from app.collectives.models import Collective
from app.collectives.views import WRITERS, AdmitForm, collective_scope
from app.errors import DomainError
from app.extensions import db

from . import operations as ops
from .models import Household, Person
from .scopes import household_scope, person_scope

bp = Blueprint("people", __name__)
STAFF = ("collective_officer", "bureau_staff", "hukou_officer", "auditor")
PAGE = 50


class RevealForm(FlaskForm):
    field = SelectField(choices=[("id_number", _l("ID number")), ("phone", _l("Phone"))])
    purpose = StringField(_l("Purpose"), validators=[Length(max=200)])


def _page() -> int:
    try:
        return max(1, int(request.args.get("page", 1)))
    except ValueError:
        return 1


@bp.get("/people")
@access(*STAFF)
def people_list():
    q = (request.args.get("q") or "").strip()
    number = None
    if q and ops.looks_like_id_number(q):
        # A search by full ID number confirms a guess: an unmasked view, allowed, logged and
        # counted by the operation (an auditor's list stays masked).
        try:
            number = ops.lookup_by_id_number(current_user, q,
                                             current_app.config["ID_LOOKUP_PER_HOUR"])
        except DomainError as err:
            db.session.commit()  # the refusal is logged
            flash(err.full(), "error")
            return render_template("people/list.html", people=[], q=q, page=1, total=0,
                                   pages=1), err.status
        db.session.commit()
    page = _page()
    total, people = ops.persons_page(jurisdiction_like(current_user), number,
                                     None if number else q, page, PAGE)
    return render_template("people/list.html", people=list(people), q=q, page=page, total=total,
                           pages=max(1, -(-total // PAGE)))


@bp.get("/people/<int:person_id>")
@access("farmer", *STAFF, scope=person_scope)
def person_detail(person_id: int):
    person = db.session.get(Person, person_id)
    memberships, households = ops.places_of(person_id)
    return render_template("people/detail.html", person=person, memberships=memberships,
                           households=households, form=RevealForm(), revealed=None)


@bp.post("/people/<int:person_id>/reveal")
@access("farmer", "collective_officer", "bureau_staff", "hukou_officer", scope=person_scope)
def person_reveal(person_id: int):
    person = db.session.get(Person, person_id)
    form = RevealForm()
    if not form.validate_on_submit():
        abort(400)
    value = ops.reveal(current_user, person, form.field.data, form.purpose.data)
    db.session.commit()
    memberships, households = ops.places_of(person_id)
    return render_template("people/detail.html", person=person, memberships=memberships,
                           households=households, form=form,
                           revealed=(form.field.data, value))


@bp.get("/households/<int:household_id>")
@access("farmer", *STAFF, scope=household_scope)
def household_detail(household_id: int):
    hh = db.session.get(Household, household_id)
    return render_template("people/household.html", household=hh)


# Admitting a registered person (found by ID number) to a collective: the collective's page posts
# here; it sits with people, the higher of the two features (app.collectives never imports people).
@bp.post("/collectives/<int:collective_id>/members")
@access(*WRITERS, scope=collective_scope)
def admit_member(collective_id: int):
    c = db.session.get(Collective, collective_id)
    form = AdmitForm()
    if not form.validate_on_submit():
        flash(_("Please correct the form: %(errors)s", errors=form.errors), "error")
        return redirect(url_for("collectives.collective_detail", collective_id=c.id))
    person = ops.person_by_id_number(form.id_number.data)
    if person is None:
        flash(_("No person with that ID number is registered."), "error")
        return redirect(url_for("collectives.collective_detail", collective_id=c.id))
    collectives.admit(current_user, person, c, form.basis.data, form.began_on.data,
                      reason=form.reason.data)
    db.session.commit()
    flash(_("%(name)s was admitted.", name=person.name), "success")
    return redirect(url_for("collectives.collective_detail", collective_id=c.id))
