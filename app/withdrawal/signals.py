"""What the withdrawal feature does when a lower feature asks (see app/signals.py)."""
from app import signals

from . import operations as ops


def _proof(ground, right_uid: int, record_id, ended_on):
    return ops.effective_withdrawal_id(record_id, right_uid, ended_on)


signals.right_end_proof.connect(_proof, sender="voluntary_withdrawal", weak=False)
