"""What the people feature answers when a lower feature asks (see app/signals.py)."""
from app import signals

from . import operations as ops
from .scopes import person_scope


def _person_scope(person_id: int):
    return person_scope(person_id)


def _collective_page(collective) -> dict:
    return {"households": ops.households_of_collective(collective.id)}


signals.person_scope.connect(_person_scope, weak=False)
signals.collective_page.connect(_collective_page, weak=False)
