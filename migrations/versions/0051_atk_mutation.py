"""The 'mutation' ground's record cannot be forged or borrowed (tests/test_atk_0050.py).

0050 asked of a right ended on 'mutation' a split or merge whose parent parcel was held by some
version of the right.  On the app's own connection that record was the app role's to make:
parcel_mutation and parcel_lineage took any UPDATE (a rename relabelled 'split') and any INSERT
(the right's own current parcel named the parent of someone else's split), a land_right_parcel
row could be added to a right's existing version (a parcel another household's split handed on
long ago, "held" by the right after the fact), and a right version's end_lifespan could be set
in the future (a version "still holding" a parcel it had passed on).  A one-part split — the
same land under a new number, a rename — counted as a split.  Each ended a right that no
mutation handed to anyone (农村土地承包法 art 27: no taking back during the term; 乡村振兴促进法
art 55: settling in town is never a ground).

Now:
- parcel_mutation and parcel_lineage are history: never updated or deleted;
- a lineage row links a parent version ended by the same change (this transaction) and left the
  last version of its parcel, to a child version made by it; a split's or merge's child is
  another parcel (uid), an amendment's the parent's next version;
- a right version's parcels are written when the version is made (in its transaction, while it
  is current) and only over current parcels; a version's lifespan never ends in the future;
- mutation_handed_on(right uid, mutation): a split into two or more parcels or a merge of two or
  more, neither keeping a parcel under its own uid, whose parent version was ended while a
  version of the right held that parcel.  land_right_end_proof() and the operation
  (app.rights.operations._proof) both ask it.

Revision ID: 0051_atk_mutation
Revises: 0050_mutation_hands_on
"""
from alembic import op

revision = "0051_atk_mutation"
down_revision = "0050_mutation_hands_on"
branch_labels = None
depends_on = None

HANDED_ON = r"""
CREATE OR REPLACE FUNCTION mutation_handed_on(right_uid bigint, mutation integer)
  RETURNS boolean LANGUAGE sql STABLE SET search_path = public, pg_temp AS $$
  SELECT EXISTS (
    SELECT 1 FROM parcel_mutation m
    JOIN parcel_lineage l ON l.mutation_id = m.id AND l.county_code = m.county_code
    JOIN parcel p ON p.id = l.parent_id AND p.end_lifespan IS NOT NULL
    JOIN land_right_parcel rp ON rp.parcel_uid = p.uid
    JOIN land_right v ON v.id = rp.right_id AND v.uid = $1
     AND v.begin_lifespan <= p.end_lifespan
     AND (v.end_lifespan IS NULL OR v.end_lifespan >= p.end_lifespan)
    WHERE m.id = $2 AND m.kind IN ('split', 'merge')
      AND NOT EXISTS (SELECT 1 FROM parcel x WHERE x.uid = p.uid AND x.end_lifespan IS NULL)
      AND (SELECT CASE m.kind WHEN 'split' THEN count(DISTINCT c.uid)
                              ELSE count(DISTINCT q.uid) END
           FROM parcel_lineage k JOIN parcel c ON c.id = k.child_id
           JOIN parcel q ON q.id = k.parent_id WHERE k.mutation_id = m.id) >= 2
      AND NOT EXISTS (SELECT 1 FROM parcel_lineage k JOIN parcel c ON c.id = k.child_id
                      JOIN parcel q ON q.id = k.parent_id
                      WHERE k.mutation_id = m.id AND c.uid = q.uid))
$$;
"""

GUARDS = r"""
CREATE OR REPLACE FUNCTION parcel_mutation_history() RETURNS trigger LANGUAGE plpgsql
  SET search_path = public, pg_temp AS $$
BEGIN
  RAISE EXCEPTION 'parcel.history: parcel mutation % is history: never rewritten or deleted; a right ends on the mutation that really handed its parcel on (农村土地承包法 art 27)', OLD.id
    USING ERRCODE = 'integrity_constraint_violation';
END $$;

CREATE TRIGGER parcel_mutation_history BEFORE UPDATE OR DELETE ON parcel_mutation
  FOR EACH ROW EXECUTE FUNCTION parcel_mutation_history();

CREATE OR REPLACE FUNCTION parcel_lineage_guard() RETURNS trigger LANGUAGE plpgsql
  SET search_path = public, pg_temp AS $$
DECLARE par record; chi record; k text;
BEGIN
  IF TG_OP <> 'INSERT' THEN
    RAISE EXCEPTION 'parcel.history: the lineage of parcel versions is history: never rewritten or deleted (农村土地承包法 art 27)'
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  SELECT uid, version, begin_lifespan, end_lifespan INTO par FROM parcel WHERE id = NEW.parent_id;
  SELECT uid, version, begin_lifespan, end_lifespan INTO chi FROM parcel WHERE id = NEW.child_id;
  SELECT kind INTO k FROM parcel_mutation WHERE id = NEW.mutation_id;
  IF par.end_lifespan IS NULL OR par.end_lifespan < now() OR EXISTS (
       SELECT 1 FROM parcel x WHERE x.uid = par.uid AND x.id <> NEW.parent_id
         AND x.id <> NEW.child_id AND (x.end_lifespan IS NULL OR x.version > par.version)) THEN
    RAISE EXCEPTION 'parcel.lineage: the parent of a mutation is the last version of its parcel, ended by that same change (parcel %)', NEW.parent_id
      USING ERRCODE = 'check_violation';
  END IF;
  IF chi.begin_lifespan IS NULL OR chi.begin_lifespan < now() THEN
    RAISE EXCEPTION 'parcel.lineage: the child of a mutation is a version made by that same change (parcel %)', NEW.child_id
      USING ERRCODE = 'check_violation';
  END IF;
  IF (k IN ('split', 'merge') AND chi.uid = par.uid)
     OR (k IN ('correction', 'attribute')
         AND (chi.uid <> par.uid OR chi.version <> par.version + 1)) THEN
    RAISE EXCEPTION 'parcel.lineage: a % hands parcel % on to %: a split or merge makes other parcels, an amendment the next version of the same one', k, NEW.parent_id, NEW.child_id
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END $$;

CREATE TRIGGER parcel_lineage_guard BEFORE INSERT OR UPDATE OR DELETE ON parcel_lineage
  FOR EACH ROW EXECUTE FUNCTION parcel_lineage_guard();

CREATE OR REPLACE FUNCTION land_right_parcel_made_with_version() RETURNS trigger
  LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM land_right v WHERE v.id = NEW.right_id
                   AND v.status = 'current' AND v.end_lifespan IS NULL
                   AND v.begin_lifespan >= now()) THEN
    RAISE EXCEPTION 'right.history: the parcels of a right version are written when the version is made; a parcel joins a right by a new version (农村土地承包法 art 27, 34)'
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  IF NOT EXISTS (SELECT 1 FROM parcel p WHERE p.uid = NEW.parcel_uid
                   AND p.end_lifespan IS NULL) THEN
    RAISE EXCEPTION 'right.parcel.unknown: parcel % (uid %) is not a current parcel of the register; a right is made over current parcels (NY/T 2539-2016)', NEW.parcel_code, NEW.parcel_uid
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END $$;

CREATE TRIGGER land_right_parcel_made_with_version BEFORE INSERT ON land_right_parcel
  FOR EACH ROW EXECUTE FUNCTION land_right_parcel_made_with_version();

CREATE OR REPLACE FUNCTION land_right_lifespan_not_ahead() RETURNS trigger
  LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
  IF NEW.end_lifespan IS DISTINCT FROM OLD.end_lifespan
     AND NEW.end_lifespan > clock_timestamp() THEN
    RAISE EXCEPTION 'right.history: version % of right % is closed when it is replaced, not at a later time (%)', NEW.version, NEW.uid, NEW.end_lifespan
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  RETURN NEW;
END $$;

CREATE TRIGGER land_right_lifespan_not_ahead BEFORE UPDATE OF end_lifespan ON land_right
  FOR EACH ROW EXECUTE FUNCTION land_right_lifespan_not_ahead();
"""

DROP_GUARDS = r"""
DROP TRIGGER land_right_lifespan_not_ahead ON land_right;
DROP FUNCTION land_right_lifespan_not_ahead();
DROP TRIGGER land_right_parcel_made_with_version ON land_right_parcel;
DROP FUNCTION land_right_parcel_made_with_version();
DROP TRIGGER parcel_lineage_guard ON parcel_lineage;
DROP FUNCTION parcel_lineage_guard();
DROP TRIGGER parcel_mutation_history ON parcel_mutation;
DROP FUNCTION parcel_mutation_history();
"""

PROOF = r"""
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
    IF r.end_record_id IS NULL OR NOT mutation_handed_on(r.uid, r.end_record_id) THEN
      RAISE EXCEPTION 'right.end.evidence: right % ends on a mutation only with the split or merge that handed one of its parcels, held by it then, to successor parcels; an amendment, a correction or a one-part split hands it to nobody (农村土地承包法 art 27)', r.uid
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

# 0050's text, restored on downgrade
PROOF_0050 = r"""
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


def upgrade():
    op.execute(HANDED_ON)
    op.execute(GUARDS)
    op.execute(PROOF)


def downgrade():
    op.execute(PROOF_0050)
    op.execute(DROP_GUARDS)
    op.execute("DROP FUNCTION mutation_handed_on(bigint, integer)")
