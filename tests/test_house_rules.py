"""House rules checked by reading the source (issue 16, points 2 and 3):

- views only translate HTTP: no SQL (SQL text, `.execute(`, `select(`, `session.query`, `func.`)
  in any views.py / api.py / *_views.py outside app/ogc (whose queries its own engineer moves);
- each feature writes only its own tables: no SQL string in a feature writes (INSERT / UPDATE /
  DELETE / TRUNCATE) a table whose model lives in another feature.

Loading an object by the id in the URL (`db.session.get(Model, id)`) is parsing the request, not
SQL, and is allowed."""
import ast
import re
from pathlib import Path

from app import register_models
from app.extensions import db

ROOT = Path(__file__).resolve().parents[1]
SQL_IN_VIEW = re.compile(r"\btext\(|\.execute\(|\bselect\(|session\.query|\bfunc\.")
WRITE = re.compile(r"\b(INSERT\s+INTO|UPDATE|DELETE\s+FROM|TRUNCATE)\s+(?:ONLY\s+)?"
                   r"([a-z_][a-z0-9_]*)", re.I)

# Views still holding SQL, with how many lines of it: this list may only shrink (a ratchet). Each
# is a known debt of issue 16, reported in its note; a new file or a larger count fails.
REMAINING_SQL_IN_VIEWS = {
    "app/market/views.py": 6,
    "app/market/trading_views.py": 4,
}

# Writers of another feature's tables, each with its reason.
ALLOWED_FOREIGN_WRITES = {
    # `flask demo load` generates a synthetic county set-wise on an empty database (households,
    # members, memberships, parcels by the hundred thousand), as a delivery would bring them.
    "app/demo/operations.py": "demo data generator",
}


def _view_files():
    for path in sorted((ROOT / "app").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith("app/ogc/"):
            continue
        if path.name in ("views.py", "api.py") or path.name.endswith("_views.py"):
            yield rel, path


def sql_lines(source: str) -> list[int]:
    return [i for i, line in enumerate(source.splitlines(), 1)
            if SQL_IN_VIEW.search(line) and not line.lstrip().startswith("#")]


def test_the_sql_detector_sees_sql():
    src = ('def v():\n    x = db.session.execute(text("SELECT 1"))\n'
           '    y = select(A).where(A.b == 1)\n    n = db.session.query(A)\n    # select(x)\n'
           '    z = db.session.get(A, 1)\n    w = func.count()\n')
    assert sql_lines(src) == [2, 3, 4, 7]


def test_no_sql_in_views():
    found = {rel: len(sql_lines(path.read_text(encoding="utf-8"))) for rel, path in _view_files()}
    grown = {rel: n for rel, n in found.items() if n > REMAINING_SQL_IN_VIEWS.get(rel, 0)}
    assert not grown, ("SQL in views (move it to the feature's operations or queries): "
                       f"{grown}")
    # the ratchet tightens: a file that got cleaner must be lowered in the list above
    stale = {rel: (n, found.get(rel, 0)) for rel, n in REMAINING_SQL_IN_VIEWS.items()
             if found.get(rel, 0) < n}
    assert not stale, f"lower REMAINING_SQL_IN_VIEWS (listed, found): {stale}"


def table_owners() -> dict[str, str]:
    """table name → feature package that defines its model."""
    register_models()
    return {m.local_table.name: m.class_.__module__.split(".")[1]
            for m in db.Model.registry.mappers}


def foreign_writes(feature: str, source: str, owners: dict[str, str]) -> list[str]:
    out = []
    for n in ast.walk(ast.parse(source)):
        if isinstance(n, ast.Constant) and isinstance(n.value, str):
            for verb, table in WRITE.findall(n.value):
                owner = owners.get(table.lower())
                if owner and owner != feature:
                    out.append(f"{n.lineno}: {' '.join(verb.split()).upper()} {table} "
                               f"(owned by app.{owner})")
    return out


def test_the_write_detector_sees_a_foreign_write():
    owners = table_owners()
    assert owners["household"] == "people" and owners["parcel"] == "parcels"
    src = 'q = """\n  INSERT INTO household (cbfbm) VALUES (1)"""\nr = "UPDATE parcel SET x = 1"\n'
    assert len(foreign_writes("parcels", src, owners)) == 1
    assert len(foreign_writes("imports", src, owners)) == 2


def test_no_feature_writes_another_features_tables():
    owners = table_owners()
    bad = []
    for path in sorted((ROOT / "app").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        parts = path.relative_to(ROOT / "app").parts
        if len(parts) < 2 or rel in ALLOWED_FOREIGN_WRITES:
            continue
        bad += [f"{rel}:{w}" for w in foreign_writes(parts[0], path.read_text(encoding="utf-8"),
                                                      owners)]
    assert not bad, "call the owning feature's operation instead:\n" + "\n".join(bad)
