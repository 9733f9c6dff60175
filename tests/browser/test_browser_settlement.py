"""A hukou officer walks an application through to approval and prints the rights-kept notice,
in headless Debian Chromium.  The data is committed (the live server sees only committed data),
so the test uses a household of the second village that no other test touches."""
import datetime as dt
import subprocess

from playwright.sync_api import expect
from sqlalchemy import select, text

from app.extensions import db
from tests.conftest import PASSWORD

RELATION = {"10": "spouse", "11": "spouse", "12": "spouse", "20": "child", "30": "child"}


def _household_with_rights(app):
    """The last household of the second village holding contract land and a homestead, with
    its rights registered (idempotent)."""
    from app.parcels.models import Parcel
    from app.people.models import Household
    from app.rights import operations as rights

    with app.app_context():
        code = db.session.execute(text("""
            SELECT h.cbfbm FROM household h
            WHERE h.cbfbm LIKE (SELECT min(village_code) FROM collective
                                WHERE village_code > (SELECT min(village_code) FROM collective))
                               || '%'
              AND EXISTS (SELECT 1 FROM parcel p WHERE p.household_code = h.cbfbm
                          AND p.kind = 'homestead')
              AND EXISTS (SELECT 1 FROM parcel p WHERE p.household_code = h.cbfbm
                          AND p.kind = 'contract')
              AND (SELECT count(*) FROM household_member m WHERE m.household_id = h.id
                   AND m.relation IN ('10','11','12')) = 1
            ORDER BY h.id DESC LIMIT 1""")).scalar()
        hh = db.session.scalar(select(Household).where(Household.cbfbm == code))
        if not rights.current_rights(code):
            fields = db.session.scalars(select(Parcel).where(
                Parcel.household_code == code, Parcel.kind == "contract",
                Parcel.end_lifespan.is_(None))).all()
            rights.register_land_contract("bureau", code, code + "J", [(p, None) for p in fields],
                                          dt.date(1999, 1, 1), dt.date(2058, 12, 31),
                                          reason="确权")
            home = db.session.scalar(select(Parcel).where(Parcel.household_code == code,
                                                          Parcel.kind == "homestead"))
            rights.register_homestead("bureau", code, home, reason="确权")
            db.session.commit()
        head = hh.head
        spouse = next(m.person for m in hh.current_members if m.relation in ("10", "11", "12"))
        info = (code, head.id_number, head.name, spouse.id_number)
        db.session.remove()
        return info


def test_hukou_officer_approves_a_settlement_and_prints_the_notice(app, page, live_server):
    code, head_id, head_name, spouse_id = _household_with_rights(app)
    page.goto(live_server + "/login")
    page.fill("input[name=username]", "hukou")
    page.fill("input[name=password]", PASSWORD)
    page.click("#login-submit")
    page.click("#menu-settlement summary")  # the menu group opens, then its entry
    page.click("#nav-settlement")
    expect(page.locator("h1")).to_have_text("进城落户")
    page.click("#new-application")
    page.fill("input[name=applicant_id_number]", head_id)
    page.select_option("select[name=town]", label="潞州区")
    page.select_option("select[name=basis]", "owned_house")
    page.fill("input[name=residence_address]", "潞州区英雄中路 18 号 2-1-302")
    page.fill("input[name=property_certificate_no]", "晋(2026)长治市不动产权第0034567号")
    page.check("input[name=living_there]")
    page.select_option("select[name=destination]", "house_address")
    page.fill("input[name=destination_address]", "潞州区英雄中路 18 号 2-1-302")
    page.fill("input[name='members-0-id_number']", spouse_id)
    page.select_option("select[name='members-0-relation']", "spouse")
    page.click("#submit-application")
    expect(page.locator("#application-status")).to_have_text("已受理")
    expect(page.locator("#members")).to_contain_text(head_name)

    page.select_option("#document-form select[name=doc_type]", "property_certificate")
    page.set_input_files("#document-form input[name=file]", files=[{
        "name": "不动产权证书.pdf", "mimeType": "application/pdf", "buffer": b"%PDF-1.4 test"}])
    page.click("#document-form button")
    expect(page.locator("#documents")).to_contain_text("不动产权证书.pdf")

    page.select_option("#decision-form select[name=outcome]", "approve")
    page.check("#decision-form input[value=present_originals]")
    page.fill("#decision-form textarea[name=note]", "材料齐全，准予落户")
    page.click("#decide")
    expect(page.locator("#application-status")).to_have_text("已批准")
    expect(page.locator(".flash.success")).to_contain_text("各项权利和成员身份保持不变")

    page.click("#rights-kept-notice")
    notice = page.locator("#notice")
    expect(notice).to_contain_text("进城落户权益保留告知书")
    expect(notice).to_contain_text(code + "J")
    expect(notice).to_contain_text("宅基地使用权")
    page.emulate_media(media="print")
    pdf = page.pdf(format="A4")  # what the officer's print dialog sends to the printer
    (live_server.artifacts / "rights-kept-notice.pdf").write_bytes(pdf)
    printed = subprocess.run(["pdftotext", "-", "-"], input=pdf, capture_output=True,
                             check=True).stdout.decode()
    assert code + "J" in printed and "您保留下列各项权利" in printed
    assert "进城落户" not in printed.split("进城落户权益保留告知书")[0]  # no menu in the print
