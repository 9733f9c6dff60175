"""The house's one mechanism for a lower feature to let higher ones react (issue 16).

A lower feature never imports a higher one. When something it does must have consequences in a
higher feature (a right ends → its certificate no longer stands), it *sends* a signal declared here;
the higher feature *subscribes* in its own `signals.py`, which `create_app` imports
(`register_signal_handlers`).

Blinker (which Flask ships) calls receivers synchronously, in the sender's thread, so a handler runs
inside the sender's database transaction (same `db.session`), and an exception in a handler
propagates out of `send` to the sender's caller: the whole operation rolls back. Never wrap `send`
in a try/except. tests/test_layers.py checks both."""
from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

parcels_succeeded = _signals.signal("parcels-succeeded", doc=(
    "app.parcels split or merged parcels. sender: actor; kwargs: parents (ended parcels), "
    "children (new parcels), reason. app.rights carries the rights over them to the successors."))

parcel_holder_change = _signals.signal("parcel-holder-change", doc=(
    "app.parcels is about to amend who holds a parcel or what it is: its household code, kind or "
    "collective. sender: actor; kwargs: parcel (the current version), changes (those of the "
    "three fields that change, new values). app.rights refuses (raises) while a current right "
    "holds it (of another holder, for the household code)."))

right_ended = _signals.signal("right-ended", doc=(
    "app.rights ended a right. sender: actor; kwargs: right_uid, reason. app.certificates "
    "cancels the certificate issued on it."))

right_end_proof = _signals.signal("right-end-proof", doc=(
    "app.rights asks for the record proving a right's end on a ground a higher feature keeps. "
    "sender: the ground (e.g. 'voluntary_withdrawal'); kwargs: right_uid, record_id, ended_on. "
    "The receiver connected for that ground (app.withdrawal) returns the record's id or None."))

parcel_page = _signals.signal("parcel-page", doc=(
    "app.parcels renders a parcel's page. sender: the parcel; each receiver returns a dict of "
    "template context (app.rights: the rights on it)."))

person_scope = _signals.signal("person-scope", doc=(
    "app.collectives needs where a person belongs now (to refuse a staff account widening its own "
    "jurisdiction). sender: person_id. app.people returns its Scope (memberships, household "
    "places, hukou), or None."))

collective_page = _signals.signal("collective-page", doc=(
    "app.collectives renders a collective's page. sender: the collective; each receiver returns "
    "a dict of template context (app.people: its households)."))


def send(signal, sender, **kwargs) -> list:
    """`signal.send`, returning the receivers' results; exceptions propagate (see module doc)."""
    return [result for _, result in signal.send(sender, **kwargs)]
