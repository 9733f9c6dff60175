"""The house's dependency order (issue 16, docs/architecture.md) is enforced here, in `make test`:

- import-linter's layers contract (.importlinter) holds, and it does catch an upward import;
- no import of app.* inside a function remains (the way cycles used to be dodged), outside a short,
  commented allow-list;
- the signals that replaced those imports run their handlers inside the sender's transaction, and a
  handler's error reaches the sender's caller (nothing is swallowed)."""
import ast
import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from app import signals
from app.certificates import operations as certificates
from app.certificates.models import Certificate
from app.rights import operations as rights
from tests.test_rights import _contract, _household_with_land

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).parent / "lint-imports"


def _lint(config: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([str(LINT), "--config", str(config), "--no-cache"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def test_layers_contract_holds():
    out = _lint(ROOT / ".importlinter")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Contracts: 2 kept, 0 broken." in out.stdout


def test_layers_contract_catches_an_upward_import(tmp_path):
    """The same contract with rights and parcels swapped must break: rights imports parcels, which
    would then be an upward import. (A checker that passes everything proves nothing.)"""
    lines = (ROOT / ".importlinter").read_text().splitlines()
    i, j = lines.index("    rights"), lines.index("    parcels | reports")
    lines[i], lines[j] = lines[j], lines[i]
    cfg = tmp_path / "swapped.ini"
    cfg.write_text("\n".join(lines) + "\n")
    out = _lint(cfg)
    assert out.returncode != 0
    assert "app.rights is not allowed to import app.parcels" in out.stdout


# Imports of app.* inside a function: allowed only here, each for a stated reason.
ALLOWED_FUNCTION_IMPORTS = {
    # The app factory is the composition root: it imports every feature's models, views, CLI and
    # signal handlers when an app is built, so that `import app` (config, extensions) stays cheap
    # and every feature can import app.extensions without importing all the others.
    ("app/__init__.py", "*"): "app factory",
    # The JSON API's composition root, called by the factory (same reason).
    ("app/rest.py", "register_api"): "API composition root",
}


def function_level_imports(source: str) -> list[tuple[str, int, str]]:
    """(function, line, module) of every import of app.* (absolute or relative) in a function."""
    found = []
    for fn in ast.walk(ast.parse(source)):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for n in ast.walk(fn):
            if isinstance(n, ast.ImportFrom) and (n.level or
                                                  (n.module or "").split(".")[0] == "app"):
                found.append((fn.name, n.lineno, "." * n.level + (n.module or "")))
            elif isinstance(n, ast.Import):
                found += [(fn.name, n.lineno, a.name) for a in n.names
                          if a.name.split(".")[0] == "app"]
    return found


def test_the_detector_finds_imports_in_functions():
    src = ("import app.x\nfrom app import y\n"
           "def f():\n    from app.rights import operations as r\n    import app.z\n"
           "    def g():\n        from .models import M\n    return r\n"
           "def h():\n    import json\n    from flask import g\n")
    got = {(f, m) for f, _, m in function_level_imports(src)}
    assert got == {("f", "app.rights"), ("f", "app.z"), ("f", ".models"), ("g", ".models")}


def test_no_import_of_app_inside_a_function():
    bad = []
    for path in sorted((ROOT / "app").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        for fn, line, module in function_level_imports(path.read_text(encoding="utf-8")):
            if (rel, "*") in ALLOWED_FUNCTION_IMPORTS or (rel, fn) in ALLOWED_FUNCTION_IMPORTS:
                continue
            bad.append(f"{rel}:{line} {fn}() imports {module}")
    assert not bad, ("imports inside functions (a cycle being dodged? use app/signals.py, or "
                     "move the code to the layer that owns it):\n" + "\n".join(bad))


def test_gis_imports_nothing_from_app():
    for path in sorted((ROOT / "gis").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for n in ast.walk(tree):
            mods = ([n.module or ""] if isinstance(n, ast.ImportFrom) else
                    [a.name for a in n.names] if isinstance(n, ast.Import) else [])
            assert not any(m.split(".")[0] == "app" for m in mods), f"{path}:{n.lineno}"


# --- signals: same transaction, errors propagate -------------------------------------------------

def test_signal_handlers_run_in_the_senders_transaction(dbs):
    """Ending a right cancels its certificate through app.signals.right_ended: the handler sees the
    sender's uncommitted writes and runs in the same database transaction."""
    hh, fields, _ = _household_with_land(dbs)
    right = _contract(dbs, hh, fields, end=dt.date(2058, 12, 31))
    cert = certificates.issue("bureau", right)
    sender_tx = dbs.execute(text("SELECT txid_current()")).scalar()
    seen = {}

    def spy(actor, right_uid, reason):
        seen["tx"] = dbs.execute(text("SELECT txid_current()")).scalar()
        # the sender's UPDATE of land_right is visible: same transaction, not yet committed
        seen["status"] = dbs.execute(text(
            "SELECT status FROM land_right WHERE uid = :u AND end_lifespan IS NULL"),
            {"u": right_uid}).scalar()

    signals.right_ended.connect(spy)
    try:
        rights.end_right("bureau", right, "court_judgment", dt.date.today(),
                         record=rights.record_court_judgment(
                             "bureau", right, "上党区人民法院", "（2026）晋0404民初7号",
                             dt.date.today(), b"%PDF judgment"))
    finally:
        signals.right_ended.disconnect(spy)
    assert seen == {"tx": sender_tx, "status": "ended"}
    dbs.refresh(cert)
    assert dbs.get(Certificate, cert.id).status == "cancelled"  # the real handler ran too


def test_a_handlers_error_reaches_the_senders_caller(dbs):
    hh, fields, _ = _household_with_land(dbs)
    right = _contract(dbs, hh, fields, end=dt.date(2058, 12, 31))

    class Boom(Exception):
        pass

    def fail(actor, right_uid, reason):
        raise Boom(right_uid)

    signals.right_ended.connect(fail)
    try:
        with pytest.raises(Boom) as e:
            rights.end_right("bureau", right, "court_judgment", dt.date.today(),
                             record=rights.record_court_judgment(
                                 "bureau", right, "上党区人民法院", "（2026）晋0404民初8号",
                                 dt.date.today(), b"%PDF judgment"))
    finally:
        signals.right_ended.disconnect(fail)
    assert e.value.args == (right.uid,)


def test_every_signal_has_its_subscriber_connected(app):
    """The factory connects each higher feature's handlers (register_signal_handlers)."""
    for sig in (signals.parcels_succeeded, signals.right_ended, signals.parcel_page,
                signals.person_scope, signals.collective_page):
        assert sig.receivers, sig.name
    assert list(signals.right_end_proof.receivers_for("voluntary_withdrawal"))
    assert not list(signals.right_end_proof.receivers_for("court_judgment"))
