from pathlib import Path

from babel.messages.pofile import read_po

from tests.conftest import csrf_from

ROOT = Path(__file__).resolve().parent.parent


def test_chinese_by_default_and_english_on_switch(client, login_as):
    page = client.get("/login").get_data(as_text=True)
    assert "登录" in page and 'lang="zh-CN"' in page
    client.get("/lang/en")
    page = client.get("/login").get_data(as_text=True)
    assert "Sign in" in page and 'lang="en"' in page
    client.get("/lang/zh")
    assert "登录" in client.get("/login").get_data(as_text=True)


def test_every_message_has_a_chinese_translation():
    with open(ROOT / "app/translations/zh/LC_MESSAGES/messages.po", "rb") as f:
        catalog = read_po(f)
    missing = [m.id for m in catalog if m.id and (not m.string or m.fuzzy)]
    assert missing == []
    assert len(catalog) > 100


def test_templates_have_no_untranslated_text():
    """Text between tags must come through gettext (a crude but useful check)."""
    import re

    offenders = []
    for path in (ROOT / "templates").rglob("*.html"):
        src = path.read_text(encoding="utf-8")
        src = re.sub(r"{[{%#].*?[}%#]}", "", src, flags=re.S)
        src = re.sub(r"<(script|style)\b.*?</\1>", "", src, flags=re.S)
        for text in re.findall(r">([^<>]+)<", src):
            t = text.strip()
            technical = re.fullmatch(r"[A-Z0-9 :·#/().,-]+", t)  # EPSG:, FID, CRS codes
            if re.search(r"[A-Za-z]{3,}", t) and t not in {"English"} and not technical:
                offenders.append((path.name, t))
    assert offenders == []


def test_domain_error_message_switches_language(login_as, dbs):
    from sqlalchemy import select

    from app.collectives.models import Membership

    m = dbs.scalars(select(Membership).where(Membership.status == "active")).first()
    c = login_as("bureau")
    c.get("/lang/en")
    page = c.get(f"/collectives/{m.collective_id}/members/{m.id}/end")
    r = c.post(f"/collectives/{m.collective_id}/members/{m.id}/end", follow_redirects=True,
               data={"csrf_token": csrf_from(page.get_data(as_text=True)), "ground": "divorce",
                     "ended_on": "2026-01-01", "reason": "x"})
    body = r.get_data(as_text=True)
    assert "may not be ended because of divorce" in body and "art 17" in body


def test_no_message_is_defined_twice():
    """A msgid defined twice in one context: only the first translation is ever shown, and the
    second (often written for another screen) is dead — msgfmt -c calls it a fatal error."""
    import re

    po = (Path(__file__).parent.parent / "app/translations/zh/LC_MESSAGES/messages.po").read_text(
        encoding="utf-8")
    keys = re.findall(r'^(?:msgctxt ((?:"(?:[^"\\]|\\.)*"\n)+))?msgid ((?:"(?:[^"\\]|\\.)*"\n)+)'
                      r'msgstr', po, flags=re.M)

    def joined(block):  # a string written over several lines is one string
        return "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', block))

    seen, twice = set(), []
    for ctx, msgid in keys:
        key = (joined(ctx), joined(msgid))
        if key[1] and key in seen:
            twice.append(key[1])
        seen.add(key)
    assert len(keys) > 1000 and twice == []
