"""The market's clock: the server's time in China, unless a test (or a demo) sets
`MARKET_CLOCK` to a callable returning an aware datetime — no operation ever sleeps."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from flask import current_app, has_app_context

CHINA = ZoneInfo("Asia/Shanghai")


def now() -> dt.datetime:
    fn = current_app.config.get("MARKET_CLOCK") if has_app_context() else None
    return fn() if fn else dt.datetime.now(CHINA)


def today() -> dt.date:
    return now().astimezone(CHINA).date()
