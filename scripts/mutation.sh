#!/usr/bin/env bash
# Mutation testing of the rule modules (issue 16): mutmut mutates one module at a time and, for
# each mutant, runs only the tests about that module (a session of its own on a database of its
# own, TEST_DATABASE_URL, default sanquan_test_mutation on the private cluster).
#   scripts/mutation.sh                 every module below
#   scripts/mutation.sh app/grounds.py  one of them
#   MUTATE_LINES=104-200,319-437 scripts/mutation.sh app/withdrawal/operations.py
#                                       only the mutants on those lines of that one module
#                                       (scripts/mutmut_lines.py: mutmut's --use-patch-file
#                                       reading line ranges; the rest of the file is untouched)
# Results: `.venv/bin/mutmut results` / `.venv/bin/mutmut show ID` (cache: .mutmut-cache).
# mutmut 2 mutates the file in place and restores it; if interrupted, `git checkout FILE`.
#
# The fast path (a mutant is a whole pytest process, so its fixed cost is what matters):
#  * the database is built once (migrations, seeded county, demo accounts: ~25 s) by a first,
#    ordinary run of the module's tests; every mutant then runs with SANQUAN_TEST_REUSE_DB=1
#    (tests/conftest.py keeps a database already at the migrations' head with the demo
#    accounts; every test rolls back, so it stays as built).  `make test` never sets it.
#  * PYTEST_DISABLE_PLUGIN_AUTOLOAD=1: the hypothesis/schemathesis/anyio pytest plugins cost ~7 s
#    of imports per process and the rule tests need none of them (hypothesis itself still works).
#  * the runner (`scripts/mutation.sh --runner TESTS`) exits 1 on any failure: mutmut 2 counts
#    only exit status 1 as killed, and pytest
#    exits 2 when collection fails — a mutant that breaks the module's import (a syntax error,
#    `{*x, "k": v}`) was reported as a survivor.
#  What each module's mutants run, and the time per mutant on this (2-core, shared, load 6-8)
#  machine (pytest start + app + the tests; the first file is the focused one, so with -x most
#  mutants die in it within seconds):
#   app/grounds.py               tests/test_rules_grounds.py (focused, every branch): ~13 s a
#                                mutant measured (89 in ~20 min; before: test_membership.py +
#                                test_guard_adversarial_text.py with the full build, 90-120 s)
#   app/withdrawal/operations.py tests/test_rules_withdrawal.py, then tests/test_withdrawal.py:
#                                ~6 s a mutant measured over the first 94 (most die in the
#                                catalogue test; a survivor runs both files, ~20 s)
#                                NB on 2026-11-29's integrated code test_withdrawal.py fails 4 of 7
#                                (0026_scale's generated parcel.county_code is NULL in NEW in
#                                parcel_guard's BEFORE UPDATE, so every parcel version end is
#                                refused); the run was made with that trigger fixed in its database.
#   app/settlement/operations.py tests/test_rules_settlement.py (focused: every refusal and branch),
#                                then tests/test_settlement.py (nothing but the hukou changes):
#                                25-50 s a mutant on 2026-11-29 at load 12-21 (61 mutants)
#   app/rights/operations.py     tests/test_rules_rights.py (focused: grounds, proofs, expiry),
#                                then tests/test_rights.py minus the sample delivery: same
#  A mutant first runs the focused module's tests about the function it is in
#  (scripts/mutation_focus.py), then, if they all pass, the whole list: the verdict is the same,
#  a killed mutant just dies sooner.  MUTATE_LINES restricts a run to line ranges of one module.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
if [ "${1:-}" = --runner ]; then  # what mutmut runs for each mutant: any failure is a kill
  shift
  # First the focused module's tests about the mutated function (scripts/mutation_focus.py):
  # a mutant they kill dies in seconds; one they do not kill runs the whole list below, so
  # killed/survived is decided exactly as without this step.  (pytest 5: nothing selected.)
  focus=$($PY scripts/mutation_focus.py "${MUTATE_MODULE:-}" 2>/dev/null || true)
  if [ -n "$focus" ]; then
    rc=0; $PY -m pytest -x -q -p no:cacheprovider -W ignore "$1" -k "$focus" || rc=$?
    [ $rc = 0 ] || [ $rc = 5 ] || exit 1
  fi
  $PY -m pytest -x -q -p no:cacheprovider -W ignore "$@" || exit 1
  exit 0
fi
declare -A TESTS=(
  [app/grounds.py]="tests/test_rules_grounds.py"
  [app/withdrawal/operations.py]="tests/test_rules_withdrawal.py tests/test_withdrawal.py"
  [app/settlement/operations.py]="tests/test_rules_settlement.py tests/test_settlement.py"
  [app/rights/operations.py]="tests/test_rules_rights.py tests/test_rights.py -k 'not sample_delivery'"
)
ORDER=(app/grounds.py app/withdrawal/operations.py app/settlement/operations.py app/rights/operations.py)
if [ "${TEST_DATABASE_URL:-}" = "" ] || [ "${MUTATION_OWN_DB:-1}" = 1 ]; then
  scripts/pg.sh start
  export TEST_DATABASE_URL=$(scripts/pg.sh url sanquan_test_mutation)
  scripts/pg.sh ensure "$TEST_DATABASE_URL" >/dev/null
fi
modules=("$@"); [ ${#modules[@]} -gt 0 ] || modules=("${ORDER[@]}")
export PYTEST_DISABLE_PLUGIN_AUTOLOAD=1
status=0
for m in "${modules[@]}"; do
  tests=${TESTS[$m]:?no tests named for $m}
  export MUTATE_MODULE=$m
  echo "== building the database once and checking the tests pass unmutated ($tests)"
  (export SANQUAN_TEST_REUSE_DB=0; eval "$PY -m pytest -x -q -p no:cacheprovider -W ignore $tests" >/dev/null)
  echo "== mutmut on $m (tests: $tests)"
  lines=()
  if [ -n "${MUTATE_LINES:-}" ]; then
    [ ${#modules[@]} = 1 ] || { echo "MUTATE_LINES needs exactly one module" >&2; exit 1; }
    lines=(--use-patch-file "$m:$MUTATE_LINES")
    echo "   only lines $MUTATE_LINES"
  fi
  SANQUAN_TEST_REUSE_DB=1 $PY scripts/mutmut_lines.py run --paths-to-mutate "$m" "${lines[@]}" \
    --runner "scripts/mutation.sh --runner $tests" --no-progress || status=$?
done
.venv/bin/mutmut results || true
exit $(( status & 1 ))  # survivors are reported, not fatal; a crash of mutmut is
