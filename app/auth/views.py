from urllib.parse import urlsplit

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, Length

from app.access import ROLE_LABELS, ROLES, access
from app.extensions import db, limiter

from . import operations as ops

bp = Blueprint("auth", __name__)


class LoginForm(FlaskForm):
    username = StringField(_l("User name"), validators=[DataRequired(), Length(max=50)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=200)])


def _safe_next(target: str | None) -> str:
    if target and urlsplit(target).netloc == "" and target.startswith("/") \
            and not target.startswith("//"):
        return target
    return url_for("main.dashboard")


@bp.route("/login", methods=["GET", "POST"])
@access(public=True)
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"], methods=["POST"])
def login():
    form = LoginForm()
    if form.validate_on_submit():
        user = ops.authenticate(form.username.data.strip(), form.password.data)
        db.session.commit()
        if user is not None:
            session.clear()
            login_user(user)
            return redirect(_safe_next(request.args.get("next")))
        flash(_("Wrong user name or password."), "error")
    return render_template("auth/login.html", form=form)


@bp.post("/logout")
@access(public=True)
@login_required
def logout():
    lang = session.get("lang")
    logout_user()
    session.clear()
    if lang:
        session["lang"] = lang
    return redirect(url_for("auth.login"))


@bp.get("/lang/<code>")
@access(public=True)
def set_language(code: str):
    if code in current_app.config["LANGUAGES"]:
        session["lang"] = code
    ref = request.referrer
    return redirect(ref if ref and urlsplit(ref).netloc == request.host else
                    (url_for("main.dashboard") if current_user.is_authenticated
                     else url_for("auth.login")))


class UserForm(FlaskForm):
    username = StringField(_l("User name"), validators=[DataRequired(), Length(max=50)])
    display_name = StringField(_l("Display name"), validators=[DataRequired(), Length(max=100)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(min=10, max=200)])
    role = SelectField(_l("Role"), choices=[(r, ROLE_LABELS[r]) for r in ROLES])
    jurisdiction_code = StringField(_l("Jurisdiction (division or issuing-party code)"),
                                    validators=[Length(max=14)])
    person_id_number = StringField(_l("ID number of the person (farmers)"),
                                   validators=[Length(max=18)])
    reason = StringField(_l("Reason for the record"), validators=[DataRequired(), Length(max=500)])


@bp.route("/admin/users", methods=["GET", "POST"])
@access("admin")
def users():
    from sqlalchemy import select

    from app.auth.models import User

    form = UserForm()
    token = None
    if form.validate_on_submit():
        person_id = household = None
        if form.person_id_number.data:
            person_id, household = ops.farmer_link(form.person_id_number.data)
        ops.create_user(current_user, form.username.data.strip(), form.password.data,
                        form.role.data, form.display_name.data.strip(),
                        form.jurisdiction_code.data.strip() or None, person_id, household,
                        reason=form.reason.data)
        db.session.commit()
        flash(_("Account %(name)s created.", name=form.username.data), "success")
        return redirect(url_for(".users"))
    elif request.method == "POST":
        flash(_("Please correct the form: %(errors)s", errors=form.errors), "error")
    accounts = db.session.scalars(select(User).order_by(User.role, User.username)).all()
    return render_template("auth/users.html", form=form, accounts=accounts, token=token,
                           token_form=FlaskForm())


@bp.post("/admin/users/<int:user_id>/token")
@access("admin")
def user_token(user_id: int):
    from app.auth.models import User

    target = db.session.get(User, user_id)
    if target is None or not FlaskForm().validate_on_submit():
        abort(404 if target is None else 400)
    token = ops.issue_api_token(current_user, target)
    db.session.commit()
    flash(_("New API token for %(name)s (shown once): %(token)s", name=target.username,
            token=token), "success")
    return redirect(url_for(".users"))
