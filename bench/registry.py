"""The registry of benchmark parts (`python -m bench --only NAME`).  A module of bench/ adds
its part with

    from bench.registry import register_part

    @register_part("membership")
    def membership_part(args, url):   # args: the parsed command line; url: BENCH_DATABASE_URL
        return [line(...), ...]       # figures, see bench.__main__.line

and bench/__main__.py imports it (`PLUGINS`).  Parts run in the order registered; one
registered with default=False runs only when named by --only (e.g. scale)."""
from __future__ import annotations

PARTS: dict = {}


def register_part(name: str, fn=None, default: bool = True):
    def deco(f):
        PARTS[name] = (f, default)
        return f
    return deco(fn) if fn else deco
