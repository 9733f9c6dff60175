"""A right carried to its successor parcels goes on; it does not end on the mutation that carried
it (tests/test_atk_0051.py).

0051 made the 'mutation' ground's record unforgeable, but the ground itself still ended too much:
- a lawful split of ONE parcel of a contract carries the right over the successors (a new version
  of the same right) — and then ended the whole right, the successors and every parcel no
  mutation touched with it.  A merge of the holder's parcel into a neighbour household's did the
  same, and left the merged parcel to the neighbour.  Nothing was handed to a successor right:
  the household simply lost its land (农村土地承包法 art 27: no taking back during the term;
  乡村振兴促进法 art 55).  Now the ground needs that a later current right of the same holder
  holds all the ended version's land for at least its term (right_land_kept_alone() is NULL —
  a successor with an earlier term end would let the land go on 'expiry'), and it is not dated
  before the mutation (its local date, Asia/Shanghai, whatever the session's time zone).
- an end on expropriation dated before the decision, or on holder_extinct before the household's
  own end, was accepted: an end is never dated before its ground.
- a household whose members all joined another household (并户, or moved on by a division) ended
  as 'all_members_left', and its right then ended as 'holder_extinct' — the settled household's
  land gone while its people live on in a successor household.  'holder_extinct' now needs that
  no member left for another household: the holder died out (or lost nationality).
- on the app's connection a new version of a right could leave out its parcels (a "current"
  right over nothing): a version now keeps the land of the one it follows, or the successors a
  split or merge made of it (deferred constraint trigger land_right_version_keeps_land).
- a parcel could come under the current land-contract (or homestead) rights of two holders
  (rights.add_parcels, register_homestead, a merge across households carrying both rights):
  land_right_parcel_one_holder refuses it.
- an amendment could move a parcel to another household while a current right of its holder
  holds it, or make a held contract parcel another kind of land or another collective's
  (parcel_holder_kept).
- a mutation's time is the change's (NEW.at := now()): a 'mutation' end cannot be dated back by
  backdating the mutation.

Revision ID: 0053_atk_0051
Revises: 0052_staging_speed
"""
from alembic import op

revision = "0053_atk_0051"
down_revision = "0052_staging_speed"
branch_labels = None
depends_on = None

KEPT = r"""
CREATE OR REPLACE FUNCTION right_land_kept_alone(version_id integer)
  RETURNS text LANGUAGE sql STABLE SET search_path = public, pg_temp AS $$
  -- the first parcel of right version `version_id` that no later right (a greater uid) of the
  -- same kind and holder, current and for at least the same term, holds (or that is no current
  -- parcel: the right was not carried over its successors); NULL when ending the version leaves
  -- its holder every piece of its land for as long as the version ran.  A successor is always
  -- a later right: two rights can never each be the other's successor, so two sessions ending
  -- both at once (each seeing the other current) cannot leave the holder nothing
  SELECT rp.parcel_code FROM land_right v JOIN land_right_parcel rp ON rp.right_id = v.id
  WHERE v.id = $1 AND NOT EXISTS (
      SELECT 1 FROM parcel p WHERE p.uid = rp.parcel_uid AND p.end_lifespan IS NULL
        AND EXISTS (SELECT 1 FROM land_right_parcel sp JOIN land_right s ON s.id = sp.right_id
                    WHERE sp.parcel_uid = rp.parcel_uid AND s.uid > v.uid AND s.kind = v.kind
                      AND s.status = 'current' AND s.end_lifespan IS NULL
                      AND s.holder_household_code IS NOT DISTINCT FROM v.holder_household_code
                      AND s.holder_person_id IS NOT DISTINCT FROM v.holder_person_id
                      AND (v.term_end IS NULL OR s.term_end >= v.term_end)))
  ORDER BY rp.parcel_code LIMIT 1
$$;
"""

GUARDS = r"""
CREATE OR REPLACE FUNCTION land_right_version_keeps_land() RETURNS trigger LANGUAGE plpgsql
  SET search_path = public, pg_temp AS $$
DECLARE lost text;
BEGIN
  SELECT op.parcel_code INTO lost FROM land_right o JOIN land_right_parcel op ON op.right_id = o.id
  WHERE o.uid = NEW.uid AND o.version = NEW.version - 1
    AND NOT EXISTS (SELECT 1 FROM land_right_parcel np
                    WHERE np.right_id = NEW.id AND np.parcel_uid = op.parcel_uid)
    AND NOT EXISTS (SELECT 1 FROM parcel_lineage l
                    JOIN parcel pp ON pp.id = l.parent_id AND pp.uid = op.parcel_uid
                    JOIN parcel_mutation m ON m.id = l.mutation_id AND m.kind IN ('split', 'merge')
                    JOIN parcel c ON c.id = l.child_id
                    JOIN land_right_parcel np ON np.right_id = NEW.id AND np.parcel_uid = c.uid)
  ORDER BY op.parcel_code LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'right.version.land: version % of right % leaves out parcel % of the version it follows: a right keeps its land, or the successor parcels a split or merge made of it, until it ends on a lawful ground (农村土地承包法 art 27; 乡村振兴促进法 art 55)', NEW.version, NEW.uid, lost
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER land_right_version_keeps_land AFTER INSERT ON land_right
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
  WHEN (NEW.version > 1 AND NEW.kind IN ('land_contract', 'homestead'))
  EXECUTE FUNCTION land_right_version_keeps_land();

CREATE OR REPLACE FUNCTION land_right_parcel_one_holder() RETURNS trigger LANGUAGE plpgsql
  SET search_path = public, pg_temp AS $$
DECLARE v record; o record;
BEGIN
  SELECT uid, kind, holder_household_code, holder_person_id INTO v FROM land_right
   WHERE id = NEW.right_id;
  IF v.kind IN ('land_contract', 'homestead') THEN
    SELECT r.uid, r.holder_household_code INTO o FROM land_right_parcel rp
      JOIN land_right r ON r.id = rp.right_id
     WHERE rp.parcel_uid = NEW.parcel_uid AND r.kind = v.kind AND r.uid <> v.uid
       AND r.status = 'current' AND r.end_lifespan IS NULL
       AND (r.holder_household_code IS DISTINCT FROM v.holder_household_code
            OR r.holder_person_id IS DISTINCT FROM v.holder_person_id)
     LIMIT 1;
    IF FOUND THEN
      RAISE EXCEPTION 'right.parcel.other_holder: parcel % is under the current % right % of household %; it passes to another holder only when that right ends on a lawful ground, by a swap or transfer (农村土地承包法 art 27, 33, 34; 土地管理法 art 62)', NEW.parcel_code, v.kind, o.uid, o.holder_household_code
        USING ERRCODE = 'check_violation';
    END IF;
  END IF;
  RETURN NEW;
END $$;

CREATE TRIGGER land_right_parcel_one_holder BEFORE INSERT ON land_right_parcel
  FOR EACH ROW EXECUTE FUNCTION land_right_parcel_one_holder();

CREATE OR REPLACE FUNCTION parcel_holder_kept() RETURNS trigger LANGUAGE plpgsql
  SET search_path = public, pg_temp AS $$
DECLARE prev record; o record;
BEGIN
  SELECT household_code, kind, collective_id INTO prev FROM parcel
   WHERE uid = NEW.uid AND version = NEW.version - 1;
  IF NEW.kind IS DISTINCT FROM prev.kind OR NEW.collective_id IS DISTINCT FROM prev.collective_id
  THEN
    SELECT r.uid, r.kind INTO o FROM land_right_parcel rp JOIN land_right r ON r.id = rp.right_id
     WHERE rp.parcel_uid = NEW.uid AND r.kind IN ('land_contract', 'homestead')
       AND r.status = 'current' AND r.end_lifespan IS NULL LIMIT 1;
    IF FOUND THEN
      RAISE EXCEPTION 'parcel.holder: parcel % is held by the current % right %: its kind and its collective do not change while a right holds it (农村土地承包法 art 27; 乡村振兴促进法 art 55)', NEW.code, o.kind, o.uid
        USING ERRCODE = 'check_violation';
    END IF;
  END IF;
  IF NEW.household_code IS DISTINCT FROM prev.household_code THEN
    SELECT r.uid, r.kind, r.holder_household_code INTO o FROM land_right_parcel rp
      JOIN land_right r ON r.id = rp.right_id
     WHERE rp.parcel_uid = NEW.uid AND r.kind IN ('land_contract', 'homestead')
       AND r.status = 'current' AND r.end_lifespan IS NULL
       AND r.holder_household_code IS DISTINCT FROM NEW.household_code
     LIMIT 1;
    IF FOUND THEN
      RAISE EXCEPTION 'parcel.holder: parcel % stays with household %, whose current % right % holds it; an amendment does not move land to %: it passes only when that right ends on a lawful ground (农村土地承包法 art 27, 34; 乡村振兴促进法 art 55)', NEW.code, o.holder_household_code, o.kind, o.uid, coalesce(NEW.household_code, '—')
        USING ERRCODE = 'check_violation';
    END IF;
  END IF;
  RETURN NEW;
END $$;

CREATE TRIGGER parcel_holder_kept BEFORE INSERT ON parcel FOR EACH ROW
  WHEN (NEW.version > 1) EXECUTE FUNCTION parcel_holder_kept();

CREATE OR REPLACE FUNCTION parcel_mutation_at_now() RETURNS trigger LANGUAGE plpgsql
  SET search_path = public, pg_temp AS $$
BEGIN
  NEW.at := now();  -- a mutation happens when the change that makes it does
  RETURN NEW;
END $$;

CREATE TRIGGER parcel_mutation_at_now BEFORE INSERT ON parcel_mutation
  FOR EACH ROW EXECUTE FUNCTION parcel_mutation_at_now();
"""

DROP_GUARDS = r"""
DROP TRIGGER parcel_mutation_at_now ON parcel_mutation;
DROP FUNCTION parcel_mutation_at_now();
DROP TRIGGER parcel_holder_kept ON parcel;
DROP FUNCTION parcel_holder_kept();
DROP TRIGGER land_right_parcel_one_holder ON land_right_parcel;
DROP FUNCTION land_right_parcel_one_holder();
DROP TRIGGER land_right_version_keeps_land ON land_right;
DROP FUNCTION land_right_version_keeps_land();
"""

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

# 0051's text, restored on downgrade
PROOF_0051 = r"""
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


def upgrade():
    op.execute(KEPT)
    op.execute(GUARDS)
    op.execute(PROOF)


def downgrade():
    op.execute(PROOF_0051)
    op.execute(DROP_GUARDS)
    op.execute("DROP FUNCTION right_land_kept_alone(integer)")
