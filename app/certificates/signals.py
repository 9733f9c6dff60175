"""What certificates do when a lower feature acts (see app/signals.py)."""
from app import signals

from . import operations as ops


def _right_ended(actor, right_uid: int, reason: str) -> None:
    ops.cancel_for_right(actor, right_uid, reason)  # its certificate no longer stands


signals.right_ended.connect(_right_ended, weak=False)
