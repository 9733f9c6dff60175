"""A household that died out ends its rights as 'holder extinct' even though a member left it
for another household years before (tests/test_overrefusal.py).

0053 refused 'holder_extinct' whenever any member of the holder household had ever left for another
household (joined_other_household, household_division) — meant for 并户, where the household's
people all live on in a successor household.  But a daughter who married out in 2008 or a son who
divided out (分户) in 2010 is no successor of the parents' household that died out in 2025: the
household went on without them, and its rights could then never end (they stayed "current" over
the land of a household with nobody in it).  Now a member who left counts as living on in a
successor household only when they left at the household's end: on or after the last death (or
loss of nationality) in it, or when nobody in it died.  A 并户 (every member moved, or the last
ones moved after a death) is still refused (tests/test_atk_0051.py).

Revision ID: 0057_holder_extinct_successor
Revises: 0056_geom_web_fast
"""
from alembic import op

revision = "0057_holder_extinct_successor"
down_revision = "0056_geom_web_fast"
branch_labels = None
depends_on = None

PROOF = r"""
CREATE OR REPLACE FUNCTION land_right_end_proof(r land_right) RETURNS void LANGUAGE plpgsql
  SET search_path = public, pg_temp AS $$
DECLARE hh record; d date; kept text;
BEGIN
  CASE r.end_ground
  WHEN 'expiry' THEN
    IF r.term_end IS NULL OR r.ended_on < r.term_end OR r.term_end > current_date THEN
      RAISE EXCEPTION 'right.end.not_expired: right % runs until %; it ends on expiry only at or after the term end (农村土地承包法 art 21, 27)', r.uid, r.term_end
        USING ERRCODE = 'check_violation';
    END IF;
  WHEN 'holder_extinct' THEN
    SELECT ended_on, end_ground INTO hh FROM household WHERE cbfbm = r.holder_household_code;
    IF hh.ended_on IS NULL OR hh.end_ground IS NULL THEN
      RAISE EXCEPTION 'right.end.evidence: household % has not ended on a lawful ground of its own; its right does not end as "holder extinct" (农村土地承包法 art 27; 乡村振兴促进法 art 55)', r.holder_household_code
        USING ERRCODE = 'check_violation';
    END IF;
    IF r.ended_on < hh.ended_on THEN
      RAISE EXCEPTION 'right.end.before_ground: right % cannot end on %, before its holder household ended (%) (农村土地承包法 art 27)', r.uid, r.ended_on, hh.ended_on
        USING ERRCODE = 'check_violation';
    END IF;
    -- a successor household: members who left for another household at the household's end,
    -- i.e. not before the last of it died (or lost nationality) — not a child who married or
    -- divided out years before while the household went on
    IF EXISTS (SELECT 1 FROM household h JOIN household_member m ON m.household_id = h.id
                WHERE h.cbfbm = r.holder_household_code
                  AND m.end_ground IN ('joined_other_household', 'household_division')
                  AND m.left_on >= COALESCE(
                    (SELECT max(d.left_on) FROM household_member d
                      WHERE d.household_id = h.id AND d.end_ground IN ('death', 'nationality_lost')),
                    '-infinity'::date)) THEN
      RAISE EXCEPTION 'right.end.successor: members of household % live on in other households; its right passes to a successor household (a division, a transfer within the collective), it does not end as "holder extinct" (农村土地承包法 art 27, 31, 34; 乡村振兴促进法 art 55)', r.holder_household_code
        USING ERRCODE = 'check_violation';
    END IF;
  WHEN 'mutation' THEN
    IF r.end_record_id IS NULL OR NOT mutation_handed_on(r.uid, r.end_record_id) THEN
      RAISE EXCEPTION 'right.end.evidence: right % ends on a mutation only with the split or merge that handed one of its parcels, held by it then, to successor parcels; an amendment, a correction or a one-part split hands it to nobody (农村土地承包法 art 27)', r.uid
        USING ERRCODE = 'check_violation';
    END IF;
    SELECT (m.at AT TIME ZONE 'Asia/Shanghai')::date INTO d FROM parcel_mutation m
     WHERE m.id = r.end_record_id;
    IF r.ended_on < d THEN
      RAISE EXCEPTION 'right.end.before_ground: right % cannot end on %, before the mutation of % behind its end (农村土地承包法 art 27)', r.uid, r.ended_on, d
        USING ERRCODE = 'check_violation';
    END IF;
    kept := right_land_kept_alone(r.id);
    IF kept IS NOT NULL THEN
      RAISE EXCEPTION 'right.end.mutation_carried: right % goes on over parcel %: a split or merge hands a right on to the successor parcels, where it continues; it ends on a mutation only when a later current right of the same holder holds all of its land for at least its term (农村土地承包法 art 27; 乡村振兴促进法 art 55)', r.uid, kept
        USING ERRCODE = 'check_violation';
    END IF;
  WHEN 'court_judgment' THEN
    IF r.end_record_id IS NULL OR NOT EXISTS (
        SELECT 1 FROM court_judgment j WHERE j.id = r.end_record_id AND j.right_uid = r.uid
          AND j.judged_on <= r.ended_on) THEN
      RAISE EXCEPTION 'right.end.evidence: right % ends on a court judgment only with the judgment recorded (court, case number, date, file) (农村土地承包法 art 27)', r.uid
        USING ERRCODE = 'check_violation';
    END IF;
  WHEN 'expropriation' THEN
    IF r.end_record_id IS NULL OR NOT EXISTS (
        SELECT 1 FROM expropriation x WHERE x.id = r.end_record_id AND x.right_uid = r.uid
          AND x.compensation > 0 AND x.decided_on <= r.ended_on) THEN
      RAISE EXCEPTION 'right.end.evidence: right % ends on expropriation only with the expropriation and its compensation recorded, and not before its decision (土地管理法 art 48; 农村土地承包法 art 27)', r.uid
        USING ERRCODE = 'check_violation';
    END IF;
  WHEN 'voluntary_withdrawal' THEN
    IF r.end_record_id IS NULL OR NOT EXISTS (
        SELECT 1 FROM withdrawal w WHERE w.id = r.end_record_id AND w.right_uid = r.uid
          AND w.status = 'effective' AND w.effective_on <= r.ended_on) THEN
      RAISE EXCEPTION 'right.end.withdrawal_not_effective: right % ends on voluntary withdrawal only when a withdrawal of it has taken effect (农村土地承包法 art 27; 乡村振兴促进法 art 55)', r.uid
        USING ERRCODE = 'check_violation';
    END IF;
  WHEN 'transfer_terminated' THEN
    IF r.kind <> 'management' OR NOT EXISTS (SELECT 1 FROM market_contract c
        WHERE c.management_right_uid = r.uid AND c.status = 'terminated') THEN
      RAISE EXCEPTION 'right.end.forbidden_ground: only a management right ends with its transfer, and only when the transfer was terminated on an art 42 ground (农村土地承包法 art 42)'
        USING ERRCODE = 'check_violation';
    END IF;
  END CASE;
END $$;

"""

# 0053's text, restored on downgrade
PROOF_0053 = r"""
CREATE OR REPLACE FUNCTION land_right_end_proof(r land_right) RETURNS void LANGUAGE plpgsql
  SET search_path = public, pg_temp AS $$
DECLARE hh record; d date; kept text;
BEGIN
  CASE r.end_ground
  WHEN 'expiry' THEN
    IF r.term_end IS NULL OR r.ended_on < r.term_end OR r.term_end > current_date THEN
      RAISE EXCEPTION 'right.end.not_expired: right % runs until %; it ends on expiry only at or after the term end (农村土地承包法 art 21, 27)', r.uid, r.term_end
        USING ERRCODE = 'check_violation';
    END IF;
  WHEN 'holder_extinct' THEN
    SELECT ended_on, end_ground INTO hh FROM household WHERE cbfbm = r.holder_household_code;
    IF hh.ended_on IS NULL OR hh.end_ground IS NULL THEN
      RAISE EXCEPTION 'right.end.evidence: household % has not ended on a lawful ground of its own; its right does not end as "holder extinct" (农村土地承包法 art 27; 乡村振兴促进法 art 55)', r.holder_household_code
        USING ERRCODE = 'check_violation';
    END IF;
    IF r.ended_on < hh.ended_on THEN
      RAISE EXCEPTION 'right.end.before_ground: right % cannot end on %, before its holder household ended (%) (农村土地承包法 art 27)', r.uid, r.ended_on, hh.ended_on
        USING ERRCODE = 'check_violation';
    END IF;
    IF EXISTS (SELECT 1 FROM household h JOIN household_member m ON m.household_id = h.id
                WHERE h.cbfbm = r.holder_household_code
                  AND m.end_ground IN ('joined_other_household', 'household_division')) THEN
      RAISE EXCEPTION 'right.end.successor: members of household % live on in other households; its right passes to a successor household (a division, a transfer within the collective), it does not end as "holder extinct" (农村土地承包法 art 27, 31, 34; 乡村振兴促进法 art 55)', r.holder_household_code
        USING ERRCODE = 'check_violation';
    END IF;
  WHEN 'mutation' THEN
    IF r.end_record_id IS NULL OR NOT mutation_handed_on(r.uid, r.end_record_id) THEN
      RAISE EXCEPTION 'right.end.evidence: right % ends on a mutation only with the split or merge that handed one of its parcels, held by it then, to successor parcels; an amendment, a correction or a one-part split hands it to nobody (农村土地承包法 art 27)', r.uid
        USING ERRCODE = 'check_violation';
    END IF;
    SELECT (m.at AT TIME ZONE 'Asia/Shanghai')::date INTO d FROM parcel_mutation m
     WHERE m.id = r.end_record_id;
    IF r.ended_on < d THEN
      RAISE EXCEPTION 'right.end.before_ground: right % cannot end on %, before the mutation of % behind its end (农村土地承包法 art 27)', r.uid, r.ended_on, d
        USING ERRCODE = 'check_violation';
    END IF;
    kept := right_land_kept_alone(r.id);
    IF kept IS NOT NULL THEN
      RAISE EXCEPTION 'right.end.mutation_carried: right % goes on over parcel %: a split or merge hands a right on to the successor parcels, where it continues; it ends on a mutation only when a later current right of the same holder holds all of its land for at least its term (农村土地承包法 art 27; 乡村振兴促进法 art 55)', r.uid, kept
        USING ERRCODE = 'check_violation';
    END IF;
  WHEN 'court_judgment' THEN
    IF r.end_record_id IS NULL OR NOT EXISTS (
        SELECT 1 FROM court_judgment j WHERE j.id = r.end_record_id AND j.right_uid = r.uid
          AND j.judged_on <= r.ended_on) THEN
      RAISE EXCEPTION 'right.end.evidence: right % ends on a court judgment only with the judgment recorded (court, case number, date, file) (农村土地承包法 art 27)', r.uid
        USING ERRCODE = 'check_violation';
    END IF;
  WHEN 'expropriation' THEN
    IF r.end_record_id IS NULL OR NOT EXISTS (
        SELECT 1 FROM expropriation x WHERE x.id = r.end_record_id AND x.right_uid = r.uid
          AND x.compensation > 0 AND x.decided_on <= r.ended_on) THEN
      RAISE EXCEPTION 'right.end.evidence: right % ends on expropriation only with the expropriation and its compensation recorded, and not before its decision (土地管理法 art 48; 农村土地承包法 art 27)', r.uid
        USING ERRCODE = 'check_violation';
    END IF;
  WHEN 'voluntary_withdrawal' THEN
    IF r.end_record_id IS NULL OR NOT EXISTS (
        SELECT 1 FROM withdrawal w WHERE w.id = r.end_record_id AND w.right_uid = r.uid
          AND w.status = 'effective' AND w.effective_on <= r.ended_on) THEN
      RAISE EXCEPTION 'right.end.withdrawal_not_effective: right % ends on voluntary withdrawal only when a withdrawal of it has taken effect (农村土地承包法 art 27; 乡村振兴促进法 art 55)', r.uid
        USING ERRCODE = 'check_violation';
    END IF;
  WHEN 'transfer_terminated' THEN
    IF r.kind <> 'management' OR NOT EXISTS (SELECT 1 FROM market_contract c
        WHERE c.management_right_uid = r.uid AND c.status = 'terminated') THEN
      RAISE EXCEPTION 'right.end.forbidden_ground: only a management right ends with its transfer, and only when the transfer was terminated on an art 42 ground (农村土地承包法 art 42)'
        USING ERRCODE = 'check_violation';
    END IF;
  END CASE;
END $$;

"""


def upgrade():
    op.execute(PROOF)


def downgrade():
    op.execute(PROOF_0053)
