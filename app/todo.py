"""What waits for a person (待办): a small registry of to-do providers.

Each feature registers, in its own `todo.py`, a provider: a function (user) → iterable of
`Item(label, count, url)`; the home page lists the items with a count above zero, in the order
the providers were registered.  This module sits low: it imports nothing from the features
(they import it), so any feature — membership too — adds its own provider without touching
another's code."""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from flask import current_app

from app.extensions import db


@dataclass(frozen=True)
class Item:
    label: str
    count: int
    url: str
    key: str = ""  # a stable id for tests and page anchors ("market.review")


Provider = Callable[[object], Iterable[Item]]
_providers: list[tuple[str, Provider]] = []


def provider(name: str):
    """Decorator: register `fn(user) -> items` under `name` (registering a name again replaces
    the earlier provider, so reloading a module never doubles its items)."""

    def register(fn: Provider) -> Provider:
        for i, (n, _) in enumerate(_providers):
            if n == name:
                _providers[i] = (name, fn)
                return fn
        _providers.append((name, fn))
        return fn

    return register


def providers() -> list[str]:
    return [n for n, _ in _providers]


def items(user) -> list[Item]:
    """Every provider's items for this user with a count above zero.  A provider that fails
    is logged and left out: the home page never breaks because one feature's query did."""
    out: list[Item] = []
    for name, fn in _providers:
        try:
            for it in fn(user) or ():
                if it.count:
                    out.append(it if it.key else Item(it.label, it.count, it.url, name))
        except Exception:  # noqa: BLE001 — one feature's fault must not hide the others' work
            current_app.logger.exception("to-do provider %s failed", name)

            db.session.rollback()
    return out
