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
from app.auth.models import User
from app.errors import DomainError
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
        cfg = current_app.config
        try:
            user = ops.sign_in(form.username.data.strip(), form.password.data,
                               request.remote_addr or "-", cfg["LOGIN_LOCK_AFTER"],
                               cfg["LOGIN_LOCK_SECONDS"], cfg["LOGIN_LOCK_MAX_SECONDS"])
        except DomainError as err:
            db.session.commit()  # the refusal is logged
            flash(err.full(), "error")
            return render_template("auth/login.html", form=form), 429
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
    accounts = ops.accounts()
    return render_template("auth/users.html", form=form, accounts=accounts, token=token,
                           token_form=FlaskForm(), reason_form=ReasonForm(),
                           reset_form=ResetForm())


class ReasonForm(FlaskForm):
    reason = StringField(_l("Reason for the record"), validators=[DataRequired(), Length(max=500)])


class ResetForm(ReasonForm):
    password = PasswordField(_l("New password"), validators=[DataRequired(), Length(min=10, max=200)])


class PasswordForm(FlaskForm):
    old = PasswordField(_l("Current password"), validators=[DataRequired(), Length(max=200)])
    new = PasswordField(_l("New password"), validators=[DataRequired(), Length(min=10, max=200)])


def _target(user_id: int):
    target = db.session.get(User, user_id)
    if target is None:
        abort(404)
    return target


@bp.post("/admin/users/<int:user_id>/token")
@access("admin")
def user_token(user_id: int):
    """Issue (or rotate: the old token stops working) an API token.  It is shown once, on this
    response's page: never stored, never put in the session or a flash message."""
    target = _target(user_id)
    if not FlaskForm().validate_on_submit():
        abort(400)
    token = ops.issue_api_token(current_user, target)
    db.session.commit()
    resp = current_app.make_response(render_template("auth/token.html", target=target,
                                                     token=token))
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.post("/admin/users/<int:user_id>/token/revoke")
@access("admin")
def user_token_revoke(user_id: int):
    target = _target(user_id)
    form = ReasonForm()
    if not form.validate_on_submit():
        abort(400)
    ops.revoke_api_token(current_user, target, form.reason.data)
    db.session.commit()
    flash(_("The API token of %(name)s no longer works.", name=target.username), "success")
    return redirect(url_for(".users"), 303)


@bp.post("/admin/users/<int:user_id>/active")
@access("admin")
def user_active(user_id: int):
    target = _target(user_id)
    form = ReasonForm()
    if not form.validate_on_submit():
        abort(400)
    active = request.form.get("active") == "1"
    ops.set_active(current_user, target, active, form.reason.data)
    db.session.commit()
    flash(_("Account %(name)s reactivated.", name=target.username) if active else
          _("Account %(name)s deactivated.", name=target.username), "success")
    return redirect(url_for(".users"), 303)


@bp.post("/admin/users/<int:user_id>/password")
@access("admin")
def user_password_reset(user_id: int):
    target = _target(user_id)
    form = ResetForm()
    if not form.validate_on_submit():
        flash(_("Please correct the form: %(errors)s", errors=form.errors), "error")
        return redirect(url_for(".users"), 303)
    ops.reset_password(current_user, target, form.password.data, form.reason.data)
    db.session.commit()
    flash(_("The password of %(name)s was reset.", name=target.username), "success")
    return redirect(url_for(".users"), 303)


@bp.route("/account/password", methods=["GET", "POST"])
@access(*ROLES)
def change_password():
    form = PasswordForm()
    if form.validate_on_submit():
        me = current_user._get_current_object()
        ops.change_password(me, form.old.data, form.new.data)
        db.session.commit()
        login_user(me)  # this session carries the new stamp; every other one has ended
        flash(_("Your password was changed. Other sessions and your API token no longer "
                "work."), "success")
        return redirect(url_for("main.dashboard"), 303)
    if request.method == "POST":
        flash(_("Please correct the form: %(errors)s", errors=form.errors), "error")
    return render_template("auth/password.html", form=form)
