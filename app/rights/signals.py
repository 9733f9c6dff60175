"""What rights do when a lower feature acts (see app/signals.py)."""
from app import signals

from . import operations as ops


def _parcels_succeeded(actor, parents, children, reason: str) -> None:
    ops.carry_to_successors(actor, parents, children, reason)


def _parcel_holder_change(actor, parcel, changes: dict) -> None:
    ops.refuse_parcel_change(parcel.uid, parcel.code, changes)


def _parcel_page(parcel) -> dict:
    return {"rights": ops.on_parcel(parcel.uid), "ground_labels": ops.GROUND_LABELS}


signals.parcels_succeeded.connect(_parcels_succeeded, weak=False)
signals.parcel_page.connect(_parcel_page, weak=False)
signals.parcel_holder_change.connect(_parcel_holder_change, weak=False)
