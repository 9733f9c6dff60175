"""app.grounds, rule by rule and branch by branch, called directly (issue 16 point 6: the fast
module each mutant of app/grounds.py runs against, see scripts/mutation.sh).  Real PostgreSQL
through the `dbs` fixture: the refusal's audit entry must be committed, so it is read back from
the database, not from the session."""
from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest
from flask_babel import force_locale
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from app import grounds, guardtext
from app.audit.models import AuditLog
from app.errors import DomainError, Rule
from app.extensions import db
from tests.conftest import user

APP = Path(__file__).resolve().parents[1] / "app"
CJK = re.compile(r"[\u4e00-\u9fff]")

FORBIDDEN_RULE = Rule("test.forbidden", _l("forbidden ground %(ground)s"), _l("a law"))
UNKNOWN_RULE = Rule("test.unknown", _l("unknown ground %(ground)s"), _l("a law"))
LAWFUL = ("death", "other_membership")
FORBIDDEN = {"settled_in_town": "settling in town", "hukou_moved": "moving the hukou"}


def _entries(dbs, action: str) -> list[AuditLog]:
    return dbs.scalars(select(AuditLog).where(AuditLog.action == action)
                       .order_by(AuditLog.seq)).all()


# -- refuse ------------------------------------------------------------------------------------

@pytest.mark.parametrize("changes", [None, {}, {"ground": "x", "n": 3}])
@pytest.mark.parametrize("reason", [None, "a reason"])
def test_refuse_records_commits_and_raises_the_same_error(dbs, changes, reason):
    actor = user("bureau")
    error = DomainError(UNKNOWN_RULE, ground="g")
    with pytest.raises(DomainError) as caught:
        grounds.refuse(actor, error, "test.refused", "thing", 42, changes, reason)
    assert caught.value is error
    dbs.rollback()  # the refusal committed its record: a rollback does not take it back
    [entry] = _entries(dbs, "test.refused")
    assert entry.changes == {**(changes or {}), "rule": error.code}
    assert (entry.actor_id, entry.actor_name) == (actor.id, actor.username)
    assert (entry.object_type, entry.object_id, entry.reason) == ("thing", "42", reason)


def test_refuse_rule_code_overrides_a_rule_in_changes(dbs):
    with pytest.raises(DomainError):
        grounds.refuse(None, DomainError(FORBIDDEN_RULE, ground="g"), "test.refused", "thing",
                       None, {"rule": "spoofed"})
    [entry] = _entries(dbs, "test.refused")
    assert entry.changes["rule"] == FORBIDDEN_RULE.code and entry.object_id is None


# -- lawful_ground -----------------------------------------------------------------------------

def _ground(ground, reason=None, actor=None):
    return grounds.lawful_ground(actor, ground, LAWFUL, FORBIDDEN, FORBIDDEN_RULE, UNKNOWN_RULE,
                                 "test.ground", "thing", 7, reason)


@pytest.mark.parametrize("lawful", LAWFUL)
@pytest.mark.parametrize("pad", ["", " ", "\t ", " \n"])
def test_lawful_ground_returns_it_stripped_and_records_nothing(dbs, lawful, pad):
    assert _ground(f"{pad}{lawful}{pad}") == lawful
    assert _entries(dbs, "test.ground") == []


@pytest.mark.parametrize("forbidden", sorted(FORBIDDEN))
def test_forbidden_ground_is_refused_with_its_rule_and_recorded(dbs, forbidden):
    actor = user("officer")
    with pytest.raises(DomainError) as caught:
        _ground(f" {forbidden} ", reason="why", actor=actor)
    err = caught.value
    assert err.rule is FORBIDDEN_RULE and err.params == {"ground": FORBIDDEN[forbidden]}
    dbs.rollback()
    [entry] = _entries(dbs, "test.ground")
    assert entry.changes == {"ground": forbidden, "rule": FORBIDDEN_RULE.code}
    assert (entry.actor_id, entry.object_type, entry.object_id, entry.reason) == (
        actor.id, "thing", "7", "why")


@pytest.mark.parametrize("ground", [None, "", "   ", "Death", "death of a cat", "hukou"])
def test_unknown_ground_is_refused_with_the_unknown_rule(dbs, ground):
    with pytest.raises(DomainError) as caught:
        _ground(ground)
    stripped = (ground or "").strip()
    assert caught.value.rule is UNKNOWN_RULE and caught.value.params == {"ground": stripped}
    [entry] = _entries(dbs, "test.ground")
    assert entry.changes == {"ground": stripped, "rule": UNKNOWN_RULE.code}
    assert entry.actor_name and entry.actor_id is None


# -- guard_text --------------------------------------------------------------------------------

def _disguised_word(policy: str) -> tuple[str, guardtext.Hit]:
    """A text the policy refuses, taken from the detector's own lexicon (not a literal)."""
    lex = guardtext.lexicon()
    for group in guardtext.POLICIES[policy]:
        for word, *_ in lex["groups"][group]:
            hits = guardtext.check(policy, word)
            if hits:
                return word, hits[0]
    raise AssertionError(f"no word of {policy}'s groups is refused")


def test_guard_text_lets_clean_text_through_and_records_nothing(dbs):
    fields = {"note": "今年收成好", "reason": None, "reference": ["甲", "乙"]}
    assert guardtext.first_hit("membership", fields) is None
    assert grounds.guard_text(None, "membership", fields, "test.text", "thing", 1) is None
    assert _entries(dbs, "test.text") == []


@pytest.mark.parametrize("field", ["note", "reference", "no_label_field"])
def test_guard_text_refuses_records_and_names_the_field(dbs, field):
    word, hit = _disguised_word("membership")
    text = f"备注：{word}" + "。" * 600  # longer than the 500 characters kept in the log
    actor = user("officer")
    fields = {"clean": "今年收成好", field: text}
    with pytest.raises(DomainError) as caught:
        grounds.guard_text(actor, "membership", fields, "test.text", "thing", 9, reason="r")
    err = caught.value
    label = grounds.FIELD_LABELS.get(field, field)
    assert err.rule is grounds.DISGUISED
    assert err.params == {"field": label, "word": hit.word, "what": f"'{hit.word}'"}
    with force_locale("zh"):
        assert str(label) in err.message() and hit.word in err.message()
        if field in grounds.FIELD_LABELS:
            assert field not in err.message()  # the field in words, not its internal name
    dbs.rollback()
    [entry] = _entries(dbs, "test.text")
    assert entry.changes == {"field": field, "words": hit.word, "group": hit.group,
                             "matched_as": hit.form, "text": text[:500],
                             "policy": "membership", "rule": grounds.DISGUISED.code}
    assert (entry.actor_id, entry.object_type, entry.object_id, entry.reason) == (
        actor.id, "thing", "9", "r")


def test_guard_text_cites_the_rule_it_is_given(dbs):
    word, _ = _disguised_word("settlement")
    rule = Rule("test.other", _l("%(field)s: %(word)s %(what)s"), _l("a law"))
    with pytest.raises(DomainError) as caught:
        grounds.guard_text(None, "settlement", {"address": word}, "test.text", "thing", None,
                           rule=rule)
    assert caught.value.rule is rule
    [entry] = _entries(dbs, "test.text")
    assert entry.changes["rule"] == "test.other" and entry.changes["policy"] == "settlement"


def test_the_disguised_rule_cites_art_27_55_17(dbs):
    rule = grounds.DISGUISED
    assert rule.code == "guard.text"
    with force_locale("zh"):
        message = DomainError(rule, field="F", word="W", what="'W'").full()
    for law in ("农村土地承包法", "乡村振兴促进法", "农村集体经济组织法"):
        assert law in message
    assert "F" in message and "W" in message
    # the message and the source are the catalogue's, in Chinese (not the English msgid)
    err = DomainError(rule, field="F", word="W", what="'W'")
    assert err.message("zh") != err.message("en") and CJK.search(err.message("zh"))
    assert err.source("zh") != err.source("en")


def test_every_field_label_is_in_chinese(dbs):
    """A label reaches the user inside a Chinese message: it must be translated."""
    for field, label in grounds.FIELD_LABELS.items():
        with force_locale("zh"):
            assert CJK.search(str(label)), (field, str(label))


def _fields_the_app_names() -> set[str]:
    """Every name a field labelled in FIELD_LABELS could have: the database's columns, the
    operations' parameters, and the keys of the dicts written in the app (guard_text's call
    sites, forms' field maps) — except FIELD_LABELS' own."""
    import importlib

    names = {c.name for t in db.metadata.tables.values() for c in t.columns}
    for path in APP.rglob("*.py"):
        if path == APP / "grounds.py":
            continue  # FIELD_LABELS itself does not vouch for its keys
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Dict):
                names |= {k.value for k in node.keys if isinstance(k, ast.Constant)}
        if path.name == "operations.py":
            mod = importlib.import_module(".".join(path.relative_to(APP.parent).with_suffix("")
                                                   .parts))
            for _, fn in inspect.getmembers(mod, inspect.isfunction):
                names |= set(inspect.signature(fn).parameters)
    return names


def test_every_field_label_names_a_field_the_app_has(app):
    with app.app_context():
        known = _fields_the_app_names()
    unknown = sorted(set(grounds.FIELD_LABELS) - known)
    assert not unknown, f"labels for fields the app does not have: {unknown}"


def test_every_field_guard_text_is_called_with_has_a_label():
    """The fields written as a dict at guard_text's call sites are named in words in the
    refusal (membership's application statement and objection text once came out raw)."""
    raw = set()
    for path in APP.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(
                    node.func, "attr", None)) == "guard_text" and len(node.args) > 2 and \
                    isinstance(node.args[2], ast.Dict):
                raw |= {k.value for k in node.args[2].keys if isinstance(k, ast.Constant)}
    assert raw, "no call site found"
    assert not raw - set(grounds.FIELD_LABELS), sorted(raw - set(grounds.FIELD_LABELS))
