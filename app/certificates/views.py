from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from app.access import Scope, access, jurisdiction_like
from app.extensions import db
from app.printing import pdf_response
from app.security import expensive

from . import operations as ops
from .models import Certificate

bp = Blueprint("certificates", __name__)
READERS = ("collective_officer", "bureau_staff", "auditor")
ISSUERS = ("bureau_staff",)


def certificate_scope(certificate_id: int, **_) -> Scope | None:
    c = db.session.get(Certificate, certificate_id)
    if c is None:
        return None
    hh = {c.household_code} if c.household_code else set()
    return Scope([c.household_code or c.content["holder"]["household_code"]], hh)


class EndForm(FlaskForm):
    action = SelectField(_l("Action"), choices=[
        ("reissue", _l("reissue (补发): lost or destroyed")),
        ("replace", _l("replacement (换发): damaged or the right changed")),
        ("cancel", _l("cancellation (注销)"))])
    ground = SelectField(_l("Ground of a cancellation"), choices=[
        ("", "—"), *[(k, v) for k, v in ops.CANCEL_GROUND_LABELS.items()]],
        validate_choice=False)
    reference = StringField(_l("Reference of the correction"),
                            validators=[Optional(), Length(max=100)])
    reason = TextAreaField(_l("Reason"), validators=[DataRequired(), Length(max=500)])


@bp.get("/verify/<token>")
@access(public=True)
def verify(token: str):
    """The page a certificate's QR code opens: status and masked particulars, for anyone."""
    c = ops.by_token(token)
    if c is None:
        for other in ops.VERIFIERS:  # other registers' certificates (the market's 交易鉴证书)
            page = other(token)
            if page is not None:
                return page
        abort(404)
    later = ops.successor(c)
    return render_template("certificates/verify.html", c=c, shown=ops.public_particulars(c),
                           later=later)


@bp.get("/certificates")
@access(*READERS)
def register():
    q = (request.args.get("q") or "").strip()
    status = request.args.get("status")
    page = max(1, request.args.get("page", 1, type=int))
    rows = ops.register_rows(jurisdiction_like(current_user), q,
                             status if status in ("valid", "superseded", "cancelled") else None,
                             limit=101, offset=(page - 1) * 100)
    return render_template("certificates/register.html", rows=rows[:100], more=len(rows) > 100,
                           page=page, q=q, status=status)


@bp.get("/certificates/<int:certificate_id>")
@access("farmer", *READERS, scope=certificate_scope)
def detail(certificate_id: int, form: EndForm | None = None):
    c = db.session.get(Certificate, certificate_id)
    chain = ops.editions(c)
    return render_template("certificates/detail.html", c=c, chain=chain,
                           form=form or EndForm(), out_of_date=ops.out_of_date(c))


@bp.post("/certificates/<int:certificate_id>")
@access(*ISSUERS, scope=certificate_scope)
def act(certificate_id: int):
    """Reissue (补发), replace (换发) or cancel (注销), with the reason."""
    c = db.session.get(Certificate, certificate_id)
    form = EndForm()
    if not form.validate_on_submit():
        return detail.__wrapped__(certificate_id, form), 422
    base = ops.base_url()  # PUBLIC_BASE_URL: the Host header is never trusted
    if form.action.data == "cancel":
        new = ops.cancel(current_user, c, form.reason.data, form.ground.data,
                         form.reference.data)
    elif form.action.data == "reissue":
        new = ops.reissue(current_user, c, form.reason.data, base)
    else:
        new = ops.replace(current_user, c, form.reason.data, base)
    db.session.commit()
    flash(_("Recorded in the certificate register."), "success")
    return redirect(url_for("certificates.detail", certificate_id=new.id), 303)


@bp.get("/certificates/<int:certificate_id>.pdf")
@access("farmer", *READERS, scope=certificate_scope)
@expensive
def pdf(certificate_id: int):
    c = db.session.get(Certificate, certificate_id)
    name = f"{c.number}-{c.edition}.pdf" if c.kind == "land_contract" else f"certificate-{c.id}.pdf"
    return pdf_response(ops.pdf(c), name)
