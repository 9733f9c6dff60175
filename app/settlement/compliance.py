"""The compliance view: who settled in town and what they keep; every withdrawal and how soon
after a settlement it began; every refused attempt to tie settlement to giving up a right."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import text

from app.extensions import db
from app.reports import operations as reports

# Every refusal the guard records, whatever the ground or text it was tried with: a ground
# spelt "Settled_In_Town", "进城落户" or "hukou moved" is refused as unknown or forbidden —
# both are listed, as is every text the detector refused (rule guard.text).
REFUSALS = ("settlement.refused.rights_field", "settlement.refused.rights_document",
            "settlement.refused.rights_condition", "withdrawal.refused", "right.end.refused",
            "membership.end.refused", "certificate.cancel.refused", "certificate.refused.text")


def report(like: str | None, since: dt.date | None) -> dict:
    p = {"like": like or "%", "since": since or dt.date(1900, 1, 1)}
    settled = db.session.execute(text("""
        WITH moved AS (
          SELECT DISTINCT ON (mv.person_id) mv.person_id, mv.moved_on, mv.application_id
          FROM hukou_move mv JOIN settlement_member sm ON sm.application_id = mv.application_id
           AND sm.person_id = mv.person_id
          WHERE mv.application_id IS NOT NULL AND mv.moved_on >= :since
            AND coalesce(sm.from_division_code, '') LIKE :like
          ORDER BY mv.person_id, mv.moved_on DESC),
        -- every county's row of each person moved (one row per county: docs/scaling.md §3)
        moved_rows AS (
          SELECT moved.person_id, moved.moved_on, q.id AS row_id FROM moved
          JOIN person mp ON mp.id = moved.person_id JOIN person q ON q.id_number = mp.id_number),
        households AS (
          SELECT DISTINCT hh.cbfbm FROM moved_rows moved JOIN household_member hm
            ON hm.person_id = moved.row_id AND hm.left_on IS NULL
          JOIN household hh ON hh.id = hm.household_id),
        kept AS (
          SELECT r.kind, count(DISTINCT r.id) AS n, coalesce(sum(pa.scmjm), 0) AS mu
          FROM land_right r JOIN households h ON h.cbfbm = r.holder_household_code
          LEFT JOIN land_right_parcel rp ON rp.right_id = r.id
          LEFT JOIN parcel pa ON pa.uid = rp.parcel_uid AND pa.end_lifespan IS NULL
          WHERE r.status = 'current' AND r.end_lifespan IS NULL GROUP BY r.kind)
        SELECT (SELECT count(*) FROM moved) AS persons,
               (SELECT count(DISTINCT application_id) FROM moved) AS applications,
               (SELECT count(*) FROM households) AS households,
               (SELECT count(*) FROM membership ms JOIN moved_rows moved ON moved.row_id = ms.person_id
                 WHERE ms.status = 'active') AS memberships,
               coalesce((SELECT n FROM kept WHERE kind = 'land_contract'), 0) AS contracts,
               coalesce((SELECT mu FROM kept WHERE kind = 'land_contract'), 0) AS contract_mu,
               coalesce((SELECT n FROM kept WHERE kind = 'homestead'), 0) AS homesteads,
               coalesce((SELECT mu FROM kept WHERE kind = 'homestead'), 0) AS homestead_mu,
               (SELECT count(*) FROM membership ms JOIN moved_rows moved ON moved.row_id = ms.person_id
                 WHERE ms.status = 'ended' AND ms.ended_on >= moved.moved_on) AS memberships_ended
        """), p).one()
    withdrawals = db.session.execute(text("""
        SELECT w.id, w.household_code, w.right_kind, w.started_on, w.started_via, w.status,
               w.flagged, w.checked_by, w.effective_on, w.compensation, s.moved_on AS settled_on,
               w.started_on - s.moved_on AS days_after
        FROM withdrawal w LEFT JOIN LATERAL (
          SELECT mv.moved_on FROM hukou_move mv JOIN person mp ON mp.id = mv.person_id
          JOIN person hp ON hp.id_number = mp.id_number JOIN household_member hm
            ON hm.person_id = hp.id JOIN household hh ON hh.id = hm.household_id
          WHERE hh.cbfbm = w.household_code AND mv.application_id IS NOT NULL
            AND mv.moved_on <= w.started_on ORDER BY mv.moved_on DESC LIMIT 1) s ON true
        WHERE w.household_code LIKE :like AND w.started_on >= :since
        ORDER BY w.started_on DESC, w.id DESC"""), p).all()
    # Refused attempts by staff of this jurisdiction only (a county's bureau or supervisor
    # does not read another county's audit entries; the auditor's own page shows them all).
    # An operation run in a user's name (a job, the CLI) is theirs; one by nobody's account
    # ("system", "public") is shown only to viewers without a jurisdiction.
    refusals = db.session.execute(text("""
        SELECT a.seq, a.at, a.actor_name, a.action, a.object_type, a.object_id, a.changes,
               a.reason FROM audit_log a
        WHERE (a.action = ANY(:acts) OR a.changes->>'rule' LIKE :guard_rules)
          AND a.at >= :since
          AND (:everywhere OR EXISTS (
                SELECT 1 FROM app_user u
                WHERE (u.id = a.actor_id OR (a.actor_id IS NULL AND u.username = a.actor_name))
                  AND u.jurisdiction_code LIKE :like))
        ORDER BY a.seq DESC LIMIT 1000"""), {**p, "acts": list(REFUSALS), "guard_rules": "guard.%",
                                            "everywhere": like is None}).all()
    return {"settled": settled, "withdrawals": withdrawals, "refusals": refusals,
            "reports": reports.counts(like)}


def csv_rows(r: dict):
    s = r["settled"]
    yield "settled_in_town", [
        ["persons", "applications", "households", "active_memberships", "memberships_ended_since",
         "contract_rights_kept", "contract_mu_kept", "homestead_rights_kept", "homestead_mu"],
        [s.persons, s.applications, s.households, s.memberships, s.memberships_ended,
         s.contracts, s.contract_mu, s.homesteads, s.homestead_mu]]
    yield "withdrawals", [["id", "household", "right", "started_on", "via", "status", "flagged",
                           "checked_by", "effective_on", "compensation", "settled_on",
                           "days_after_settlement"]] + [
        [w.id, w.household_code, w.right_kind, w.started_on, w.started_via, w.status, w.flagged,
         w.checked_by or "", w.effective_on or "", w.compensation or "", w.settled_on or "",
         "" if w.days_after is None else w.days_after] for w in r["withdrawals"]]
    yield "refused_attempts", [["seq", "at", "actor", "action", "object", "details",
                                "reason"]] + [
        [x.seq, x.at.isoformat(), x.actor_name, x.action, f"{x.object_type} {x.object_id}",
         x.changes, x.reason or ""] for x in r["refusals"]]
    yield "coercion_reports", [list(r["reports"])] + [list(r["reports"].values())]
