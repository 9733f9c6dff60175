"""The market's trading pages (part II): the live bidding page, the operator's auction, priority
and award steps, the public result notice, the contract with both parties' confirmation and its
filing, the transfers ledger, the transaction certificate and its verification, rent, and the
end of a transfer on art 42 grounds.  Views parse, call one operation, render."""
from __future__ import annotations

import datetime as dt

from flask import (
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from app.access import access
from app.certificates import operations as certs
from app.extensions import db
from app.people.idnumber import mask_name
from app.rights import operations as rights

from . import operations as ops
from .models import Application, Auction, Award, Contract, Listing, Tender, TenderBid, TradeCertificate
from .views import OPERATOR, bp


def _verify_trade(token: str):
    tc = ops.trade_certificate_by_token(token)
    if tc is None:
        return None
    c = tc.content
    return render_template("market/verify_trade.html", tc=tc, c=c,
                           transferor=mask_name(c["transferor"]["name"]),
                           transferee=mask_name(c["transferee"]["name"]))


if _verify_trade not in certs.VERIFIERS:
    certs.VERIFIERS.append(_verify_trade)


def _io(name: str, data: bytes, mimetype: str = "application/pdf"):
    from io import BytesIO
    return send_file(BytesIO(data), mimetype=mimetype, download_name=name)


def _int(name: str, default=None):
    try:
        return int(request.form.get(name, default))
    except (TypeError, ValueError):
        return default


def _applicant():
    key = request.values.get("key") or ""
    return (ops.applicant_by_key(key), key) if key else (None, "")


# ---------------------------------------------------------------------------- the auction


@bp.get("/market/auctions/<int:auction_id>")
@access(public=True)
def auction_page(auction_id: int):
    """The live bidding page: current price, my rank (with my key), countdown on server time,
    the history as it happens (SSE from the stream service, else polling)."""
    a = db.get_or_404(Auction, auction_id)
    applicant, key = _applicant()
    me = ops.bidder_for(a, applicant) if applicant else None
    st = ops.auction_state(a.id)
    rank = None
    if me:
        order = [r["application_id"] for r in ops.ranking(a)]
        rank = order.index(me.application_id) + 1 if me.application_id in order else None
    award = db.session.scalar(select(Award).where(Award.auction_id == a.id)
                              .order_by(Award.id.desc()))
    return render_template("market/auction.html", a=a, st=st, me=me, key=key, rank=rank,
                           award=award, ops=ops,
                           stream=current_app.config.get("MARKET_STREAM_URL") or "",
                           can_operate=current_user.is_authenticated
                           and current_user.role in OPERATOR)


@bp.post("/market/listings/<int:listing_id>/auction")
@access(*OPERATOR)
def open_auction(listing_id: int):
    x = db.get_or_404(Listing, listing_id)
    a = ops.open_auction(current_user, x, step_fen=_int("step_fen", 0),
                         free_minutes=_int("free_minutes", 0),
                         timed_minutes=_int("timed_minutes", 0),
                         extension_minutes=_int("extension_minutes", 5),
                         priority_minutes=_int("priority_minutes", 1440),
                         start_in_minutes=_int("start_in_minutes", 0))
    db.session.commit()
    return redirect(url_for(".auction_page", auction_id=a.id), 303)


@bp.post("/market/auctions/<int:auction_id>/close")
@access(*OPERATOR)
def close_auction(auction_id: int):
    a = db.get_or_404(Auction, auction_id)
    if a.status == "priority":
        ops.close_priority(current_user, a)
    else:
        ops.close_auction(current_user, a)
    db.session.commit()
    return redirect(url_for(".auction_page", auction_id=a.id), 303)


@bp.post("/market/auctions/<int:auction_id>/priority")
@access(public=True)
def exercise_priority(auction_id: int):
    a = db.get_or_404(Auction, auction_id)
    applicant, key = _applicant()
    me = ops.bidder_for(a, applicant) if applicant else None
    if me is None:
        abort(403)
    ops.exercise_priority(f"applicant:{applicant.id}", a, me.application)
    db.session.commit()
    flash(_("Priority exercised at the final price; recorded with the server's time."), "success")
    return redirect(url_for(".auction_page", auction_id=a.id, key=key), 303)


# ---------------------------------------------------------------------------- the award


@bp.get("/market/awards/<int:award_id>")
@access(public=True)
def award_page(award_id: int):
    """The public result notice (成交公告): price, term, method, the masked winner."""
    aw = db.get_or_404(Award, award_id)
    contract = db.session.scalar(select(Contract).where(Contract.award_id == aw.id))
    # The result reveals who the numbered bidders were (names masked on this public page).
    ranking = []
    if aw.auction_id:
        auction = db.session.get(Auction, aw.auction_id)
        names = {b.application_id: b.application.applicant.name for b in auction.bidders}
        ranking = [{"bidder": ops.pseudonym(r["bidder_no"]), "name": mask_name(
            names[r["application_id"]]), "amount_fen": r["amount_fen"]}
            for r in ops.ranking(auction)]
    return render_template("market/award.html", aw=aw, x=aw.listing, contract=contract, ops=ops,
                           ranking=ranking,
                           winner=mask_name(aw.application.applicant.name),
                           can_operate=current_user.is_authenticated
                           and current_user.role in OPERATOR)


@bp.post("/market/awards/<int:award_id>/pay")
@access(*OPERATOR)
def award_pay(award_id: int):
    aw = db.get_or_404(Award, award_id)
    ops.pay_price(current_user, aw, _int("amount_fen", 0), request.form.get("reference", ""))
    db.session.commit()
    return redirect(url_for(".award_page", award_id=aw.id), 303)


@bp.post("/market/awards/<int:award_id>/forfeit")
@access(*OPERATOR)
def award_forfeit(award_id: int):
    aw = db.get_or_404(Award, award_id)
    nxt = ops.forfeit(current_user, aw, request.form.get("seller_agrees_ref"))
    db.session.commit()
    if nxt:
        return redirect(url_for(".award_page", award_id=nxt.id), 303)
    return redirect(url_for(".listing_page", listing_id=aw.listing_id), 303)


@bp.post("/market/awards/<int:award_id>/contract")
@access(*OPERATOR)
def draw_contract(award_id: int):
    aw = db.get_or_404(Award, award_id)
    c = ops.draw_contract(current_user, aw)
    db.session.commit()
    return redirect(url_for(".contract_page", contract_id=c.id), 303)


# ---------------------------------------------------------------------------- the contract


def _contract_or_404(contract_id: int, key: str = "") -> Contract:
    c = db.get_or_404(Contract, contract_id)
    applicant = ops.applicant_by_key(key) if key else None
    if not (ops.may_confirm(current_user, c, "transferor")
            or (applicant and ops.may_confirm(None, c, "transferee", applicant))
            or (current_user.is_authenticated and current_user.role in
                (*OPERATOR, "collective_officer", "bureau_staff", "auditor", "admin"))):
        abort(404)
    return c


@bp.get("/market/contracts/<int:contract_id>")
@access(public=True)
def contract_page(contract_id: int):
    applicant, key = _applicant()
    c = _contract_or_404(contract_id, key)
    tc = db.session.scalar(select(TradeCertificate).where(TradeCertificate.contract_id == c.id))
    return render_template(
        "market/contract_page.html", c=c, key=key, tc=tc, ops=ops,
        as_transferor=ops.may_confirm(current_user, c, "transferor"),
        as_transferee=bool(applicant and ops.may_confirm(None, c, "transferee", applicant)),
        can_file=current_user.is_authenticated and current_user.role == "collective_officer"
        and c.fbfbm.startswith(current_user.jurisdiction_code or "-"),
        rent=ops.rent_status(c) if c.status in ("filed", "terminated") else None)


@bp.get("/market/contracts/<int:contract_id>.pdf")
@access(public=True)
def contract_pdf(contract_id: int):
    c = _contract_or_404(contract_id, request.args.get("key", ""))
    return _io(f"{c.number}.pdf", c.pdf)


@bp.post("/market/contracts/<int:contract_id>/confirm")
@access(public=True)
def contract_confirm(contract_id: int):
    applicant, key = _applicant()
    c = _contract_or_404(contract_id, key)
    party = request.form.get("party", "")
    ops.confirm_contract(current_user, c, party, request.form.get("pdf_sha256", ""),
                         applicant=applicant)
    db.session.commit()
    flash(_("Confirmed: your confirmation is recorded with the time and the PDF's SHA-256."),
          "success")
    return redirect(url_for(".contract_page", contract_id=c.id, key=key or None), 303)


@bp.post("/market/contracts/<int:contract_id>/file")
@access("collective_officer")
def contract_file(contract_id: int):
    c = db.get_or_404(Contract, contract_id)
    ops.file_contract(current_user, c, base=request.host_url)
    db.session.commit()
    flash(_("Filed in the collective's ledger of transfers."), "success")
    return redirect(url_for(".contract_page", contract_id=c.id), 303)


@bp.post("/market/contracts/<int:contract_id>/terminate")
@access("farmer", "collective_officer")
def contract_terminate(contract_id: int):
    c = db.get_or_404(Contract, contract_id)
    f = request.files.get("document")
    ops.terminate(current_user, c, request.form.get("ground", ""),
                  request.form.get("evidence", ""), f.read() if f else None)
    db.session.commit()
    return redirect(url_for(".contract_page", contract_id=c.id), 303)


@bp.post("/market/contracts/<int:contract_id>/rent")
@access(*OPERATOR)
def contract_rent(contract_id: int):
    c = db.get_or_404(Contract, contract_id)
    if request.form.get("what") == "received":
        ops.record_rent(current_user, c, _int("amount_fen", 0), request.form.get("reference", ""))
    else:
        ops.pay_out(current_user, c, _int("amount_fen", 0), request.form.get("reference", ""),
                    request.form.get("what", "rent"))
    db.session.commit()
    return redirect(url_for(".contract_page", contract_id=c.id), 303)


@bp.get("/market/certificates/<int:cert_id>.pdf")
@access(public=True)
def trade_certificate_pdf(cert_id: int):
    tc = db.get_or_404(TradeCertificate, cert_id)
    _contract_or_404(tc.contract_id, request.args.get("key", ""))
    return _io(f"{tc.number}.pdf", ops.trade_certificate_pdf(tc))


@bp.get("/market/transfers/<fbfbm>")
@access("collective_officer", "bureau_staff", *OPERATOR, "auditor", "admin")
def transfers_ledger(fbfbm: str):
    if current_user.role == "collective_officer" and not fbfbm.startswith(
            current_user.jurisdiction_code or "-"):
        abort(404)
    return render_template("market/transfers.html", fbfbm=fbfbm,
                           rows=ops.transfers_ledger(fbfbm), ops=ops)


@bp.get("/market/applications/<int:market_app_id>/auction")
@access(public=True)
def my_auction(market_app_id: int):
    a = db.get_or_404(Application, market_app_id)
    auction = db.session.scalar(select(Auction).where(Auction.listing_id == a.listing_id))
    if auction is None:
        abort(404)
    return redirect(url_for(".auction_page", auction_id=auction.id,
                            key=request.args.get("key")), 303)


def today() -> dt.date:
    return ops.clock.today()


@bp.get("/market/transfers.geojson")
@access("farmer", "collective_officer", "bureau_staff", "exchange_operator", "hukou_officer",
        "auditor", "admin")
def transfers_geojson():
    """The 流转 layer: parcels under a registered land management right whose term has not
    ended (in force or starting later), with the term (the holder only as a masked name)."""
    import json

    from flask import jsonify

    rows = rights.current_management_parcels(ops.clock.today())
    return jsonify({"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": json.loads(r.g),
         "properties": {"right": r.uid, "holder": mask_name(r.holder_name), "code": r.parcel_code,
                        "term": f"{r.term_start} – {r.term_end}"}} for r in rows]})


# ---------------------------------------------------------------------------- tender, agreement


@bp.post("/market/listings/<int:listing_id>/tender")
@access(*OPERATOR)
def open_tender(listing_id: int):
    x = db.get_or_404(Listing, listing_id)
    t = ops.open_tender(current_user, x, _int("lodging_minutes", 0), _int("reveal_minutes", 0),
                        _int("weight_price", 100), _int("weight_plan", 0),
                        _int("opening_after_minutes", 0))
    db.session.commit()
    return redirect(url_for(".tender_page", tender_id=t.id), 303)


@bp.get("/market/tenders/<int:tender_id>")
@access(public=True)
def tender_page(tender_id: int):
    t = db.get_or_404(Tender, tender_id)
    applicant, key = _applicant()
    mine = next((a for a in t.listing.applications
                 if applicant and a.applicant_id == applicant.id), None)
    my_bid = next((b for b in t.bids if mine and b.application_id == mine.id), None)
    return render_template("market/tender.html", t=t, now=ops.tender_now(t), key=key,
                           mine=mine, my_bid=my_bid, ops=ops, ranking=ops.tender_ranking(t),
                           can_operate=current_user.is_authenticated
                           and current_user.role in OPERATOR)


def _tender_applicant(tender_id: int):
    t = db.get_or_404(Tender, tender_id)
    applicant, key = _applicant()
    mine = next((a for a in t.listing.applications
                 if applicant and a.applicant_id == applicant.id), None)
    if mine is None:
        abort(403)
    return t, mine, key


@bp.post("/market/tenders/<int:tender_id>/lodge")
@access(public=True)
def tender_lodge(tender_id: int):
    t, mine, key = _tender_applicant(tender_id)
    ops.lodge(f"applicant:{mine.applicant_id}", t, mine, request.form.get("commitment", ""))
    db.session.commit()
    flash(_("Sealed bid lodged. Keep your price, nonce and plan: you reveal them at the "
            "opening."), "success")
    return redirect(url_for(".tender_page", tender_id=t.id, key=key), 303)


@bp.post("/market/tenders/<int:tender_id>/reveal")
@access(public=True)
def tender_reveal(tender_id: int):
    t, mine, key = _tender_applicant(tender_id)
    ops.reveal(f"applicant:{mine.applicant_id}", t, mine, _int("price_fen", 0),
               request.form.get("nonce", ""), request.form.get("plan", ""))
    db.session.commit()
    return redirect(url_for(".tender_page", tender_id=t.id, key=key), 303)


@bp.post("/market/tenders/<int:tender_id>/score/<int:bid_id>")
@access(*OPERATOR)
def tender_score(tender_id: int, bid_id: int):
    t = db.get_or_404(Tender, tender_id)
    b = db.get_or_404(TenderBid, bid_id)
    if b.tender_id != t.id:
        abort(404)
    ops.score_plan(current_user, t, b, _int("score", -1))
    db.session.commit()
    return redirect(url_for(".tender_page", tender_id=t.id), 303)


@bp.post("/market/tenders/<int:tender_id>/close")
@access(*OPERATOR)
def tender_close(tender_id: int):
    t = db.get_or_404(Tender, tender_id)
    aw = ops.close_tender(current_user, t)
    db.session.commit()
    if aw:
        return redirect(url_for(".award_page", award_id=aw.id), 303)
    return redirect(url_for(".listing_page", listing_id=t.listing_id), 303)


@bp.post("/market/listings/<int:listing_id>/agree")
@access(*OPERATOR)
def agree(listing_id: int):
    x = db.get_or_404(Listing, listing_id)
    aw = ops.agree(current_user, x, _int("price_fen", 0))
    db.session.commit()
    return redirect(url_for(".award_page", award_id=aw.id), 303)
