"""Pages: the collective officer's membership desk (applications, assembly, roll, shares,
distributions), township staff's filed rolls, the auditor's runs and ledgers.  Views parse HTTP,
call one operation or query of app.membership.operations, render."""
from __future__ import annotations

import datetime as dt

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from app.access import Scope, access, jurisdiction_like
from app.printing import pdf_response

from . import operations as ops
from . import queries as q

bp = Blueprint("membership", __name__, url_prefix="/membership")
OFFICERS = ("collective_officer",)
READERS = ("collective_officer", "bureau_staff", "auditor")
TOWNSHIP = ("bureau_staff", "collective_officer", "auditor")


def collective_scope(collective_id: int, **_) -> Scope | None:
    c = q.collective(collective_id)
    return None if c is None else Scope([c.fbfbm])


def distribution_scope(distribution_id: int, **_) -> Scope | None:
    d = q.distribution(distribution_id)
    return None if d is None else Scope([d.collective.fbfbm])


def notice_scope(notice_id: int, **_) -> Scope | None:
    n = q.notice(notice_id)
    return None if n is None else Scope([n.collective.fbfbm])


def quantification_scope(quantification_id: int, household_id: int, **_) -> Scope | None:
    qu, hh = q.quantification(quantification_id), q.household(household_id)
    if qu is None or hh is None or hh.collective_id != qu.collective_id:
        return None
    return Scope([qu.collective.fbfbm], household_codes={hh.cbfbm})


@bp.get("/")
@access(*READERS)
def index():
    return render_template("membership/index.html",
                           collectives=q.collectives(jurisdiction_like(current_user)),
                           filed=ops.filed_rolls(jurisdiction_like(current_user)),
                           runs=ops.distributions(like=jurisdiction_like(current_user)))


@bp.get("/collectives/<int:collective_id>")
@access(*READERS, scope=collective_scope)
def desk(collective_id: int):
    return render_template("membership/desk.html", **q.desk(collective_id),
                           can_write=current_user.role in OFFICERS + ("admin",),
                           bases=ops.BASIS_LABELS, special=ops.SPECIAL_LABELS,
                           criteria_labels=ops.CRITERIA_LABELS, fen=ops.fen, shares=ops.shares)


@bp.post("/collectives/<int:collective_id>/applications")
@access(*OFFICERS, scope=collective_scope)
def apply(collective_id: int):
    f = request.form
    person = q.person_by_id_number(f.get("id_number", ""))
    if person is None:
        flash(_("No person with that ID number is registered."), "error")
    else:
        ops.apply(current_user, q.collective(collective_id), person, f.get("basis", ""),
                  facts={"livelihood": f.get("livelihood") == "1" or None},
                  special=f.getlist("special"), statement=f.get("statement") or None,
                  reason=f.get("reason") or None)
        q.commit()
        flash(_("The application is before the members' assembly."), "success")
    return redirect(url_for(".desk", collective_id=collective_id))


@bp.post("/collectives/<int:collective_id>/distributions")
@access(*OFFICERS, scope=collective_scope)
def distribute(collective_id: int):
    f = request.form
    amount = ops.parse_yuan(f.get("amount", ""))
    paid_on = _date(f.get("paid_on") or ops.today().isoformat())
    d = ops.distribute(current_user, q.collective(collective_id), amount, paid_on,
                       note=f.get("note") or None, reason=f.get("reason") or None)
    q.commit()
    flash(_("The distribution was run and paid."), "success")
    return redirect(url_for(".distribution", distribution_id=d.id))


def assembly_scope(assembly_id: int, **_) -> Scope | None:
    a = q.assembly(assembly_id)
    return None if a is None else Scope([a.collective.fbfbm])


def _ints(values) -> list[int]:
    try:
        return [int(v) for v in values]
    except (TypeError, ValueError):
        abort(400)


def _date(value: str | None) -> dt.date:
    try:
        return dt.date.fromisoformat(value or "")
    except ValueError:
        abort(400)


@bp.post("/collectives/<int:collective_id>/assemblies")
@access(*OFFICERS, scope=collective_scope)
def open_assembly(collective_id: int):
    f = request.form
    ops.open_assembly(current_user, q.collective(collective_id), _date(f.get("meeting_date")),
                      _ints(f.getlist("attendee")), reason=f.get("reason") or None)
    q.commit()
    flash(_("The assembly and its attendance are recorded."), "success")
    return redirect(url_for(".desk", collective_id=collective_id, _anchor="assemblies"))


@bp.post("/assemblies/<int:assembly_id>/resolutions")
@access(*OFFICERS, scope=assembly_scope)
def resolve(assembly_id: int):
    f = request.form
    a = q.assembly(assembly_id)
    app_ = q.membership_application(_ints([f.get("application_id")])[0])
    if app_ is None:
        abort(404)
    yes, no, abstain = _ints([f.get("yes"), f.get("no"), f.get("abstain")])
    ops.resolve(current_user, a, app_, yes, no, abstain, f.get("decision", ""),
                reason=f.get("reason") or None)
    q.commit()
    flash(_("The assembly's resolution is recorded."), "success")
    return redirect(url_for(".desk", collective_id=a.collective_id, _anchor="assemblies"))


@bp.post("/assemblies/<int:assembly_id>/notice")
@access(*OFFICERS, scope=assembly_scope)
def post_notice(assembly_id: int):
    a = q.assembly(assembly_id)
    ops.post_notice(current_user, a, reason=request.form.get("reason") or None)
    q.commit()
    flash(_("The proposed roll is posted publicly."), "success")
    return redirect(url_for(".desk", collective_id=a.collective_id, _anchor="notices"))


@bp.post("/notices/<int:notice_id>/objections")
@access(*OFFICERS, scope=notice_scope)
def lodge_objection(notice_id: int):
    f = request.form
    n = q.notice(notice_id)
    app_ = None
    if f.get("application_id"):
        app_ = q.membership_application(_ints([f.get("application_id")])[0])
        if app_ is None:
            abort(404)
    ops.lodge_objection(current_user, n, f.get("objector", ""), f.get("text", ""), app_,
                        reason=f.get("reason") or None)
    q.commit()
    flash(_("The objection is recorded."), "success")
    return redirect(url_for(".desk", collective_id=n.collective_id, _anchor="notices"))


@bp.post("/notices/<int:notice_id>/objections/<int:objection_id>/resolution")
@access(*OFFICERS, scope=notice_scope)
def resolve_objection(notice_id: int, objection_id: int):
    f = request.form
    n, o = q.notice(notice_id), q.objection(objection_id)
    if o is None or o.notice_id != n.id:
        abort(404)
    ops.resolve_objection(current_user, o, f.get("resolution", ""), f.get("reasons", ""))
    q.commit()
    flash(_("The objection is resolved."), "success")
    return redirect(url_for(".desk", collective_id=n.collective_id, _anchor="notices"))


@bp.post("/notices/<int:notice_id>/file")
@access(*OFFICERS, scope=notice_scope)
def file_roll(notice_id: int):
    n = q.notice(notice_id)
    ops.file_roll(current_user, n, reason=request.form.get("reason") or None)
    q.commit()
    flash(_("The roll is filed with the township."), "success")
    return redirect(url_for(".desk", collective_id=n.collective_id, _anchor="notices"))


@bp.get("/distributions/<int:distribution_id>")
@access(*READERS, scope=distribution_scope)
def distribution(distribution_id: int):
    d = q.distribution(distribution_id)
    return render_template("membership/distribution.html", d=d, lines=ops.payout_lines(d),
                           fen=ops.fen, can_bank=current_user.role in OFFICERS + ("admin",))


@bp.get("/distributions/<int:distribution_id>/payouts.csv")
@access(*READERS, scope=distribution_scope)
def payouts_csv(distribution_id: int):
    d = q.distribution(distribution_id)
    return Response(ops.payout_csv(d), mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="payouts-{d.id}.csv"'})


@bp.get("/distributions/<int:distribution_id>/payouts.pdf")
@access(*READERS, scope=distribution_scope)
def payouts_pdf(distribution_id: int):
    from flask_babel import get_locale

    d = q.distribution(distribution_id)
    return pdf_response(ops.render_payouts_pdf(d, str(get_locale())), f"payouts-{d.id}.pdf")


@bp.post("/distributions/<int:distribution_id>/bank.csv")
@access(*OFFICERS, scope=distribution_scope)
def bank_file(distribution_id: int):
    """Unmasked: a POST with a reason, and every download recorded."""
    reason = (request.form.get("reason") or "").strip()
    if not reason:
        flash(_("Please give the reason for the bank file."), "error")
        return redirect(url_for(".distribution", distribution_id=distribution_id))
    data = ops.bank_batch_csv(current_user, q.distribution(distribution_id), reason=reason)
    q.commit()
    return Response(data, mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="bank-{distribution_id}.csv"',
        "Cache-Control": "no-store"})


@bp.get("/notices/<int:notice_id>/roll.pdf")
@access(*TOWNSHIP, scope=notice_scope)
def filed_roll(notice_id: int):
    n = q.notice(notice_id)
    if n.status != "filed":
        abort(404)
    return pdf_response(n.pdf, f"roll-{n.collective.fbfbm}-{n.filed_on}.pdf")


@bp.get("/quantifications/<int:quantification_id>/households/<int:household_id>/certificate.pdf")
@access("collective_officer", "bureau_staff", "auditor", "farmer", scope=quantification_scope)
def certificate(quantification_id: int, household_id: int):
    from flask_babel import get_locale

    return pdf_response(ops.render_certificate_pdf(q.quantification(quantification_id),
                                                   q.household(household_id),
                                                   str(get_locale())),
                        f"share-certificate-{household_id}.pdf")


@bp.app_context_processor
def my_membership_panel():
    """The farmer's /me page (app.rights) shows 我的成员身份 / 我的股份 / 我的分红 through this
    template global, so that no lower feature imports this one."""
    def panel():
        if not current_user.is_authenticated or not getattr(current_user, "person_id", None):
            return None
        return ops.my_membership(current_user.person_id)

    return {"my_membership_panel": panel, "membership_fen": ops.fen}
