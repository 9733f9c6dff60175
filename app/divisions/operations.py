"""Administrative divisions: the reference list and its lookups."""
from __future__ import annotations

import datetime as dt

from flask_babel import lazy_gettext as _l
from sqlalchemy import text

from app.audit import operations as audit
from app.errors import DomainError, Rule
from app.extensions import db

from .models import Division

BAD_DIVISION = Rule(
    "division.code",
    _l("Division code %(code)s is malformed or its parent %(parent)s is unknown."),
    _l("GB/T 2260 administrative division codes; township and village codes extend them"),
)

# Changzhi (长治市) after the 2018 re-organisation, and the codes it retired then.
CHANGZHI = [
    ("140000", "山西省", "province", None),
    ("140400", "长治市", "city", "140000"),
    ("140403", "潞州区", "county", "140400"),
    ("140404", "上党区", "county", "140400"),
    ("140405", "屯留区", "county", "140400"),
    ("140406", "潞城区", "county", "140400"),
    ("140423", "襄垣县", "county", "140400"),
    ("140425", "平顺县", "county", "140400"),
    ("140426", "黎城县", "county", "140400"),
    ("140427", "壶关县", "county", "140400"),
    ("140428", "长子县", "county", "140400"),
    ("140429", "武乡县", "county", "140400"),
    ("140430", "沁县", "county", "140400"),
    ("140431", "沁源县", "county", "140400"),
    ("140471", "长治高新技术产业开发区", "county", "140400"),  # a functional zone, no GB 2260 code
]
RETIRED_2018 = [
    ("140402", "城区", "140403"),
    ("140411", "郊区", "140403"),
    ("140421", "长治县", "140404"),
    ("140424", "屯留县", "140405"),
    ("140481", "潞城市", "140406"),
]
REORGANISED = dt.date(2018, 1, 1)  # data surveyed before 2018 carries the old codes (domain.md §3)


def level_of(code: str) -> str:
    if len(code) == 12:
        return "village"
    if len(code) == 9:
        return "township"
    if code.endswith("0000"):
        return "province"
    if code.endswith("00"):
        return "city"
    return "county"


def parent_of(code: str) -> str | None:
    if len(code) == 12:
        return code[:9]
    if len(code) == 9:
        return code[:6]
    lvl = level_of(code)
    if lvl == "county":
        return code[:4] + "00"
    if lvl == "city":
        return code[:2] + "0000"
    return None


def ensure_reference_divisions() -> int:
    """Load Changzhi's divisions (idempotent).  Returns how many rows were added."""
    added = 0
    for code, name, level, parent in CHANGZHI:
        if db.session.get(Division, code) is None:
            db.session.add(Division(code=code, name=name, level=level, parent_code=parent))
            added += 1
    db.session.flush()
    for code, name, successor in RETIRED_2018:
        if db.session.get(Division, code) is None:
            db.session.add(Division(code=code, name=name, level="county", parent_code="140400",
                                    valid_to=REORGANISED, successor_code=successor))
            added += 1
    db.session.flush()
    if added:
        audit.record(None, "division.seed", "division", "140400", {"added": added},
                     "reference list of Changzhi divisions")
    return added


def add_division(actor, code: str, name: str) -> Division:
    """Add a township or village under an existing division."""
    parent = parent_of(code) if code.isdigit() else None
    if not code.isdigit() or len(code) not in (6, 9, 12) or (
        parent and db.session.get(Division, parent) is None
    ):
        raise DomainError(BAD_DIVISION, code=code, parent=parent)
    div = Division(code=code, name=name, level=level_of(code), parent_code=parent)
    db.session.add(div)
    db.session.flush()
    audit.record(actor, "division.add", "division", code, {"name": name}, None)
    return div


def path(code: str) -> list[Division]:
    """The chain from the province down to `code`."""
    out = []
    cur = db.session.get(Division, code)
    while cur is not None:
        out.append(cur)
        cur = db.session.get(Division, cur.parent_code) if cur.parent_code else None
    return list(reversed(out))


def full_name(code: str) -> str:
    return "".join(d.name for d in path(code)[1:]) or code


def ensure_village(village_code: str, village_name: str) -> None:
    """A delivery's village (and its township, when the county is known) in the division list:
    added when missing, never changed (set-wise registration of a delivery, app.imports)."""
    township = village_code[:9]
    db.session.execute(text("""INSERT INTO division (code, name, level, parent_code)
             SELECT :t, :tn, 'township', CAST(:c AS varchar)
             WHERE EXISTS (SELECT 1 FROM division WHERE code = CAST(:c AS varchar))
             ON CONFLICT DO NOTHING"""), {"t": township, "tn": f"乡镇{township}", "c": township[:6]})
    db.session.execute(text("""INSERT INTO division (code, name, level, parent_code)
             VALUES (:v, :vn, 'village', :t) ON CONFLICT DO NOTHING"""),
                       {"v": village_code, "vn": village_name, "t": township})
