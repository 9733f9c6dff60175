"""`make mutation` (scripts/mutation.sh) runs each mutant's tests with
PYTEST_DISABLE_PLUGIN_AUTOLOAD=1, so without pytest-xdist: tests/conftest.py must still load
there.  Its xdist scheduler hook once made every such run stop at collection ("unknown hook
'pytest_xdist_make_scheduler'"): `make mutation` died at its first step.  (Had it got past it,
the runner would have counted every mutant killed without a test run.)"""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_rule_tests_collect_without_plugin_autoload():
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
         "tests/test_rules_grounds.py"], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=120)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    collected = [line for line in out.stdout.splitlines()
                 if line.startswith("tests/test_rules_grounds.py::")]
    assert collected, out.stdout[-2000:]
