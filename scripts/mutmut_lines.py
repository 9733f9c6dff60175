"""mutmut 2.5.1 restricted to line ranges of the module it mutates (scripts/mutation.sh with
MUTATE_LINES=...): its `--use-patch-file` mutates only a patch's added lines but needs the
`whatthepatch` library, which the venv does not have; here the "patch file" argument is read as
`FILE:FIRST-LAST,FIRST-LAST,...` (1-based, inclusive) instead.  Everything else is mutmut.
    python scripts/mutmut_lines.py run --paths-to-mutate app/x.py --use-patch-file app/x.py:10-40
"""
import os
import sys

import mutmut.__main__ as cli


def read_line_ranges(spec: str) -> dict[str, set[int]]:
    path, _, ranges = spec.rpartition(":")
    lines: set[int] = set()
    for part in ranges.split(","):
        first, _, last = part.partition("-")
        lines.update(range(int(first), int(last or first) + 1))
    if not path or not lines:
        raise SystemExit(f"line ranges expected as FILE:FIRST-LAST,..., got {spec!r}")
    return {os.path.normpath(path): lines}


cli.read_patch_data = read_line_ranges

if __name__ == "__main__":
    sys.argv[0] = "mutmut"
    cli.climain()
