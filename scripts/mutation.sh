#!/usr/bin/env bash
# Mutation testing of the rule modules (issue 16): mutmut mutates one module at a time and, for
# each mutant, runs only the tests about that module (a session of its own on a database of its
# own, TEST_DATABASE_URL, default sanquan_test_mutation on the private cluster).
#   scripts/mutation.sh                 every module below
#   scripts/mutation.sh app/grounds.py  one of them
# Results: `.venv/bin/mutmut results` / `.venv/bin/mutmut show ID` (cache: .mutmut-cache).
# mutmut 2 mutates the file in place and restores it; if interrupted, `git checkout FILE`.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
declare -A TESTS=(
  [app/grounds.py]="tests/test_membership.py tests/test_guard_adversarial_text.py"
  [app/withdrawal/operations.py]="tests/test_withdrawal.py"
  [app/settlement/operations.py]="tests/test_settlement.py tests/test_settlement_web.py"
  [app/rights/operations.py]="tests/test_rights.py -k 'not sample_delivery'"
)
ORDER=(app/grounds.py app/withdrawal/operations.py app/settlement/operations.py app/rights/operations.py)
if [ "${TEST_DATABASE_URL:-}" = "" ] || [ "${MUTATION_OWN_DB:-1}" = 1 ]; then
  scripts/pg.sh start
  export TEST_DATABASE_URL=$(scripts/pg.sh url sanquan_test_mutation)
  scripts/pg.sh ensure "$TEST_DATABASE_URL" >/dev/null
fi
modules=("$@"); [ ${#modules[@]} -gt 0 ] || modules=("${ORDER[@]}")
status=0
for m in "${modules[@]}"; do
  tests=${TESTS[$m]:?no tests named for $m}
  echo "== mutmut on $m (tests: $tests)"
  .venv/bin/mutmut run --paths-to-mutate "$m" \
    --runner "$PY -m pytest -x -q -p no:cacheprovider $tests" --no-progress || status=$?
done
.venv/bin/mutmut results || true
exit $(( status & 1 ))  # survivors are reported, not fatal; a crash of mutmut is
