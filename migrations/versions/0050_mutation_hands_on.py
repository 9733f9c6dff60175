"""A right ends on a mutation only by the split or merge that handed one of its parcels to
successor parcels (tests/test_atk_db_evening.py::test_a_renamed_parcel_is_no_mutation_that_ends_its_right,
an xfail until now): a rename or correction is a new version of the same parcel, recorded in
parcel_lineage like a split, and was accepted as the "mutation" ground's record — a right could be
ended by renaming its parcel (农村土地承包法 art 27: no taking back during the term).  The
parcel handed on may be one of any version of the right (a split re-registers the right on the
successors as its next version).

Revision ID: 0050_mutation_hands_on
Revises: 0049_person_one_hukou
"""
from alembic import op

revision = "0050_mutation_hands_on"
down_revision = "0049_person_one_hukou"
branch_labels = None
depends_on = None

UP = r"""
CREATE OR REPLACE FUNCTION land_right_end_proof(r land_right) RETURNS void LANGUAGE plpgsql
  SET search_path = public, pg_temp AS $$
DECLARE hh record;
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
  WHEN 'mutation' THEN
    IF r.end_record_id IS NULL OR NOT EXISTS (
        SELECT 1 FROM parcel_lineage l
        JOIN parcel_mutation m ON m.id = l.mutation_id AND m.kind IN ('split', 'merge')
        JOIN parcel p ON p.id = l.parent_id
        JOIN land_right_parcel rp ON rp.parcel_uid = p.uid
        JOIN land_right v ON v.id = rp.right_id AND v.uid = r.uid
        WHERE l.mutation_id = r.end_record_id) THEN
      RAISE EXCEPTION 'right.end.evidence: right % ends on a mutation only with the split or merge that handed one of its parcels to successor parcels; an amendment or correction hands it to nobody (农村土地承包法 art 27)', r.uid
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
          AND x.compensation > 0) THEN
      RAISE EXCEPTION 'right.end.evidence: right % ends on expropriation only with the expropriation and its compensation recorded (土地管理法 art 48; 农村土地承包法 art 27)', r.uid
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

# 0016_market_trading's text, restored on downgrade (with 0018's pinned search_path)
DOWN = r"""
CREATE OR REPLACE FUNCTION land_right_end_proof(r land_right) RETURNS void LANGUAGE plpgsql
  SET search_path = public, pg_temp AS $$
DECLARE hh record;
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
  WHEN 'mutation' THEN
    IF r.end_record_id IS NULL OR NOT EXISTS (
        SELECT 1 FROM parcel_lineage l JOIN parcel p ON p.id IN (l.parent_id, l.child_id)
        JOIN land_right_parcel rp ON rp.parcel_uid = p.uid AND rp.right_id = r.id
        WHERE l.mutation_id = r.end_record_id) THEN
      RAISE EXCEPTION 'right.end.evidence: right % ends on a mutation only with the parcel mutation that changed its parcels (农村土地承包法 art 27)', r.uid
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
          AND x.compensation > 0) THEN
      RAISE EXCEPTION 'right.end.evidence: right % ends on expropriation only with the expropriation and its compensation recorded (土地管理法 art 48; 农村土地承包法 art 27)', r.uid
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
    op.execute(UP)


def downgrade():
    op.execute(DOWN)
