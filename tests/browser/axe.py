"""axe-core in the browser tests: serious and critical violations only.

axe-core is a devDependency in package.json (served from node_modules, never a CDN).  Where
it is found: AXE_CORE_JS (a path to axe.min.js), else node_modules/axe-core/axe.min.js of the
checkout, else /tmp/axe/node_modules/axe-core/axe.min.js (`npm install --prefix /tmp/axe
axe-core@4.14.1`).  The page runs under the app's CSP, which forbids inline script: axe is
injected through Playwright's evaluate (the DevTools protocol), not a <script> tag."""
from __future__ import annotations

import os
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CANDIDATES = [os.environ.get("AXE_CORE_JS") or "", str(ROOT / "node_modules/axe-core/axe.min.js"),
              "/tmp/axe/node_modules/axe-core/axe.min.js"]


@cache
def source() -> str:
    for c in CANDIDATES:
        if c and Path(c).is_file():
            return Path(c).read_text(encoding="utf-8")
    raise FileNotFoundError("axe-core not found: run `npm install` (package.json "
                            "devDependencies) or set AXE_CORE_JS")


def serious(page) -> list[dict]:
    """The serious/critical violations of the page as it is now: [{id, impact, nodes}]."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(source() + "\n;undefined")
    res = page.evaluate("""async () => {
        const r = await axe.run(document, {resultTypes: ['violations']});
        return r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
          .map(v => ({id: v.id, impact: v.impact, help: v.help,
                      nodes: v.nodes.slice(0, 5).map(n => n.target.join(' '))}));
    }""")
    return res
