"""Pages for hukou officers (applications, permits, decisions), farmers (my settlement, the
rights-kept notice) and auditors (the compliance view)."""
import datetime as dt
import io
import re

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import (
    BooleanField,
    DateField,
    FieldList,
    FormField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length, Optional

from app.access import Scope, access, jurisdiction_like, require_scope
from app.errors import DomainError
from app.extensions import db
from app.people import operations as people
from app.people.models import Person
from app.printing import printed
from app.security import csv_writer, expensive

from . import compliance
from . import operations as ops
from .models import (
    CONDITIONS,
    DOCUMENT_TYPES,
    SettlementApplication,
    SettlementTown,
)

bp = Blueprint("settlement", __name__)
OFFICERS = ("hukou_officer",)
READERS = ("hukou_officer", "auditor")
AUDITORS = ("auditor", "bureau_staff", "compliance_supervisor")

BASIS_CHOICES = [("owned_house", _l("owned housing, lived in")),
                 ("rental", _l("registered rental + residence permit")),
                 ("dormitory", _l("employer's dormitory + residence permit"))]
DESTINATION_CHOICES = [("house_address", _l("the house's own address")),
                       ("employer_collective", _l("the employer's collective household")),
                       ("community_collective",
                        _l("the community collective household of the police station"))]
RELATION_CHOICES = [("", "—"), ("spouse", _l("spouse")), ("child", _l("unmarried child")),
                    ("parent", _l("parent"))]
DOC_LABELS = {"id_card": _l("resident ID card"), "household_register": _l("household register"),
              "property_certificate": _l("property certificate"),
              "purchase_contract": _l("filed purchase contract"),
              "rental_registration": _l("rental registration"),
              "residence_permit": _l("residence permit"),
              "employment_proof": _l("proof of employment"),
              "dormitory_proof": _l("dormitory certificate"),
              "marriage_certificate": _l("marriage certificate"),
              "birth_certificate": _l("birth certificate"),
              "other_identity": _l("other identity document")}
CONDITION_LABELS = {"present_originals": _l("present the original documents"),
                    "register_residence_within_30_days":
                        _l("register at the new address within 30 days"),
                    "collect_new_household_booklet": _l("collect the new household booklet")}
REASON_LABELS = {
    "no_lawful_stable_residence": _l("no lawful stable residence in the town"),
    "residence_not_verified": _l("the residence could not be verified"),
    "not_living_there": _l("the applicant does not actually live there"),
    "rental_not_registered": _l("the rental is not registered with the housing authority"),
    "permit_missing_or_invalid": _l("no valid residence permit"),
    "permit_other_town": _l("the residence permit is for another town"),
    "persons_not_eligible": _l("a person moving with the applicant is not eligible"),
    "documents_incomplete": _l("identity or residence documents incomplete"),
    "identity_not_verified": _l("identity could not be verified"),
    "town_not_open": _l("the town is not open to settlement"),
    "duplicate_application": _l("a duplicate of another application"),
}


def application_scope(application_id: int, **_) -> Scope | None:
    a = db.session.get(SettlementApplication, application_id)
    if a is None:
        return None
    codes = {a.town.division_code}
    codes |= {m.from_division_code for m in a.members if m.from_division_code}
    return Scope(sorted(codes), set(), {m.person_id for m in a.members})


class MemberForm(FlaskForm):
    class Meta:
        csrf = False

    id_number = StringField(_l("ID number"), validators=[Optional(), Length(max=18)])
    relation = SelectField(_l("Relation"), choices=RELATION_CHOICES, validate_choice=False)
    unmarried = BooleanField(_l("unmarried"), default=True)


class ApplicationForm(FlaskForm):
    applicant_id_number = StringField(_l("Applicant's ID number"),
                                      validators=[DataRequired(), Length(min=18, max=18)])
    town = SelectField(_l("Town"), coerce=int)
    basis = SelectField(_l("Lawful stable residence"), choices=BASIS_CHOICES)
    residence_address = StringField(_l("Where the applicant lives"),
                                    validators=[DataRequired(), Length(max=200)])
    property_certificate_no = StringField(_l("Property certificate no."),
                                          validators=[Optional(), Length(max=60)])
    purchase_contract_no = StringField(_l("Filed purchase contract no."),
                                       validators=[Optional(), Length(max=60)])
    living_there = BooleanField(_l("The applicant actually lives there"))
    rental_registration_no = StringField(_l("Rental registration no."),
                                         validators=[Optional(), Length(max=60)])
    employer_name = StringField(_l("Employer"), validators=[Optional(), Length(max=200)])
    permit_number = StringField(_l("Residence permit no."), validators=[Optional(),
                                                                      Length(max=40)])
    destination = SelectField(_l("Hukou goes to"), choices=DESTINATION_CHOICES)
    police_station = StringField(_l("Police station"), validators=[Optional(), Length(max=100)])
    destination_address = StringField(_l("Destination address"),
                                      validators=[DataRequired(), Length(max=200)])
    members = FieldList(FormField(MemberForm), min_entries=4, max_entries=8)


class PermitForm(FlaskForm):
    id_number = StringField(_l("ID number"), validators=[DataRequired(), Length(min=18,
                                                                                max=18)])
    number = StringField(_l("Residence permit no."), validators=[DataRequired(),
                                                                 Length(max=40)])
    town = SelectField(_l("Town"), coerce=int)
    address = StringField(_l("Address"), validators=[DataRequired(), Length(max=200)])
    resident_since = DateField(_l("Resident since"), validators=[DataRequired()])
    issued_on = DateField(_l("Issued on"), validators=[DataRequired()])
    valid_until = DateField(_l("Valid until"), validators=[Optional()])


class DocumentForm(FlaskForm):
    doc_type = SelectField(_l("Document type"), choices=[(k, DOC_LABELS[k])
                                                        for k in DOCUMENT_TYPES],
                           validate_choice=False)
    file = FileField(_l("File"), validators=[FileRequired()])


class DecisionForm(FlaskForm):
    outcome = SelectField(_l("Decision"), choices=[("approve", _l("approve")),
                                                   ("reject", _l("refuse"))])
    conditions = SelectMultipleField(_l("Conditions"), choices=[(k, CONDITION_LABELS[k])
                                                               for k in CONDITIONS],
                                     validate_choice=False)
    reasons = SelectMultipleField(_l("Reasons for a refusal"),
                                  choices=list(REASON_LABELS.items()), validate_choice=False)
    note = TextAreaField(_l("Note (adds to the reasons)"),
                         validators=[Optional(), Length(max=2000)])


def _town_choices():
    return [(t.id, t.name) for t in ops.towns()]


def _person_by_id_number(number: str) -> Person | None:
    return people.person_with_id_number(number)


@bp.get("/settlement")
@access(*READERS)
def application_list():
    form = PermitForm()
    form.town.choices = _town_choices()
    return render_template("settlement/list.html",
                           rows=ops.applications(jurisdiction_like(current_user), 200),
                           permit_form=form)


@bp.post("/settlement/permits")
@access(*OFFICERS)
def record_permit():
    form = PermitForm()
    form.town.choices = _town_choices()
    if not form.validate_on_submit():
        flash(_("Please correct the form: %(errors)s", errors=form.errors), "error")
        return redirect(url_for(".application_list"))
    person = _person_by_id_number(form.id_number.data)
    if person is None:
        flash(_("No person with ID number %(n)s is registered.", n=form.id_number.data),
              "error")
        return redirect(url_for(".application_list"))
    require_scope(Scope([person.hukou_division_code or ""]), OFFICERS)
    ops.record_permit(current_user, person, form.number.data,
                      db.session.get(SettlementTown, form.town.data), form.address.data,
                      form.resident_since.data, form.issued_on.data, form.valid_until.data)
    db.session.commit()
    flash(_("Residence permit %(n)s recorded.", n=form.number.data), "success")
    return redirect(url_for(".application_list"))


MEMBER_KEY = re.compile(r"^members-\d+-(id_number|relation|unmarried)$")
KNOWN_FORM_KEYS = {"csrf_token", "applicant_id_number", "town", "basis", "residence_address",
                   "property_certificate_no", "purchase_contract_no", "living_there",
                   "rental_registration_no", "employer_name", "permit_number", "destination",
                   "police_station", "destination_address"}


@bp.route("/settlement/new", methods=["GET", "POST"])
@access(*OFFICERS)
def new_application():
    form = ApplicationForm()
    form.town.choices = _town_choices()
    if request.method == "POST":
        # Whatever else was posted (a field the form does not have) goes to the guard.
        ops.guard_fields(current_user, request.form, KNOWN_FORM_KEYS, known_pattern=MEMBER_KEY)
        if form.validate_on_submit():
            return _create(form)
        flash(_("Please correct the form: %(errors)s", errors=form.errors), "error")
    return render_template("settlement/new.html", form=form)


def _create(form: ApplicationForm):
    applicant = _person_by_id_number(form.applicant_id_number.data)
    if applicant is None:
        flash(_("No person with ID number %(n)s is registered.",
                n=form.applicant_id_number.data), "error")
        return render_template("settlement/new.html", form=form), 422
    require_scope(Scope([applicant.hukou_division_code or ""]), OFFICERS)
    members = []
    for m in form.members.entries:
        if not (m.id_number.data or "").strip():
            continue
        p = _person_by_id_number(m.id_number.data)
        if p is None:
            flash(_("No person with ID number %(n)s is registered.", n=m.id_number.data),
                  "error")
            return render_template("settlement/new.html", form=form), 422
        members.append({"person_id": p.id, "relation": m.relation.data,
                        "unmarried": m.unmarried.data})
    permit = ops.permit_by_number(form.permit_number.data)
    fields = {k: getattr(form, k).data for k in (
        "basis", "residence_address", "property_certificate_no", "purchase_contract_no",
        "living_there", "rental_registration_no", "employer_name", "destination",
        "police_station", "destination_address")}
    a = ops.apply(current_user, applicant, db.session.get(SettlementTown, form.town.data),
                  members, residence_permit_id=permit.id if permit else None, **fields)
    db.session.commit()
    flash(_("Application %(id)s recorded.", id=a.id), "success")
    return redirect(url_for(".detail", application_id=a.id), 303)


@bp.get("/settlement/<int:application_id>")
@access(*READERS, scope=application_scope)
def detail(application_id: int):
    a = db.session.get(SettlementApplication, application_id)
    return render_template("settlement/detail.html", a=a, doc_form=DocumentForm(),
                           decision_form=DecisionForm(), doc_labels=DOC_LABELS,
                           condition_labels=CONDITION_LABELS, reason_labels=REASON_LABELS)


@bp.post("/settlement/<int:application_id>/documents")
@access(*OFFICERS, scope=application_scope)
def add_document(application_id: int):
    a = db.session.get(SettlementApplication, application_id)
    form = DocumentForm()
    if not form.validate_on_submit():
        flash(_("Please correct the form: %(errors)s", errors=form.errors), "error")
    else:
        f = form.file.data
        ops.add_document(current_user, a, form.doc_type.data, f.filename or "document",
                         f.read())
        db.session.commit()
        flash(_("Document filed."), "success")
    return redirect(url_for(".detail", application_id=a.id), 303)


@bp.post("/settlement/<int:application_id>/decision")
@access(*OFFICERS, scope=application_scope)
def decide(application_id: int):
    a = db.session.get(SettlementApplication, application_id)
    form = DecisionForm()
    ops.guard_fields(current_user, request.form,
                     ("csrf_token", "outcome", "conditions", "reasons", "note"), a.id)
    if not form.validate_on_submit():
        flash(_("Please correct the form: %(errors)s", errors=form.errors), "error")
        return redirect(url_for(".detail", application_id=a.id), 303)
    if form.outcome.data == "approve":
        ops.approve(current_user, a, request.form.getlist("conditions"), form.note.data)
        db.session.commit()
        flash(_("Approved: the hukou of %(n)s person(s) moves; every right and membership "
                "stays as it was.", n=len(a.members)), "success")
    else:
        ops.reject(current_user, a, request.form.getlist("reasons"), form.note.data)
        db.session.commit()
        flash(_("Refused with reasons."), "success")
    return redirect(url_for(".detail", application_id=a.id), 303)


@bp.get("/settlement/<int:application_id>/notice")
@access("farmer", *READERS, scope=application_scope)
def notice(application_id: int):
    """权益保留告知书: what every person of the settlement keeps — printable."""
    a = db.session.get(SettlementApplication, application_id)
    if a.status != "approved":
        abort(404)
    return render_template("settlement/notice.html", a=a, kept=ops.rights_kept(a))


@bp.get("/settlement/<int:application_id>/notice.pdf")
@access("farmer", *READERS, scope=application_scope)
@expensive
def notice_pdf(application_id: int):
    a = db.session.get(SettlementApplication, application_id)
    if a.status != "approved":
        abort(404)
    return printed("settlement/notice_print.html", f"rights-kept-{a.id}.pdf", a=a,
                   kept=ops.rights_kept(a))


@bp.get("/me/settlement")
@access("farmer")
def mine():
    rows = ops.applications_of_person(current_user.person_id)
    return render_template("settlement/mine.html", rows=rows)


@bp.get("/compliance")
@access(*AUDITORS)
def compliance_view():
    since = request.args.get("since", type=dt.date.fromisoformat)
    report = compliance.report(jurisdiction_like(current_user), since)
    return render_template("settlement/compliance.html", report=report, since=since)


@bp.get("/compliance.csv")
@access(*AUDITORS)
@expensive
def compliance_csv():
    report = compliance.report(jurisdiction_like(current_user), None)
    out = io.StringIO()
    w = csv_writer(out)
    for section, rows in compliance.csv_rows(report):
        w.writerow([section])
        w.writerows(rows)
        w.writerow([])
    return Response("\ufeff" + out.getvalue(), mimetype="text/csv", headers={
        "Content-Disposition": 'attachment; filename="settlement-compliance.csv"'})


__all__ = ["bp", "DomainError"]
