"""the rights guard made structural (issue 11): least privilege for the app's role; every lawful
ground carries its proof in the database; no silent exits; the withdrawal's own state machine

1. Privileges.  Migrations run as the owner; the app connects as SANQUAN_APP_ROLE (default
   `sanquan_app`, made by scripts/pg.sh), which owns nothing, is no superuser (so it cannot set
   session_replication_role or disable a trigger) and gets SELECT, INSERT, UPDATE on the
   tables, never TRUNCATE and never DELETE on the tables that exist now (all of them are
   history or guarded), INSERT-only on the audit log and on append-only records.

   CONVENTION FOR LATER MIGRATIONS: `ALTER DEFAULT PRIVILEGES` below gives every table the
   owner creates later SELECT, INSERT, UPDATE, DELETE for the app role, and sequences USAGE.
   A migration whose tables must never allow some of that REVOKEs it itself, e.g.
       REVOKE DELETE ON market_bid FROM sanquan_app;          -- history
       REVOKE UPDATE, DELETE ON market_bid_log FROM sanquan_app;  -- append-only log
   (read the role from os.environ.get("SANQUAN_APP_ROLE", "sanquan_app")).

2. Proof for every ground on which a right ends (land_right.end_record_id names the record):
   expiry only on or after the term end (and the term has run out); holder_extinct only when the
   household has ended on its own lawful ground; mutation only with the parcel mutation that
   touched the right's parcels; court_judgment only with a court_judgment record (court, case
   number, date, the judgment file); expropriation only with an expropriation record with its
   compensation; voluntary_withdrawal only with a withdrawal of this right that took effect.
   Membership ended on law_or_charter cites an article of a named law or a clause of the
   collective's charter register (charter_clause), and a clause that ends membership for moving
   the hukou, settling in town or living elsewhere is refused on entry (乡村振兴促进法 art 55;
   农村集体经济组织法 art 17).

3. No silent exits: a right version leaves "current" only by a recorded end (status, ground,
   proof) or by a successor version of the same right with the same holder; household_member
   rows are never deleted and change only by ending (left_on + a lawful ground) — a change is a
   new row.  The hukou-move guard of 0009 still refuses any of this in a transaction that moves
   a hukou.

4. The withdrawal's state machine: inserted only as 'consent'; each state reached only from its
   predecessor; in person only with the signed statement kept (the file) and a second officer
   as witness; every co-holder's consent by that person (their own account) or in person with
   the signed document kept; the voluntariness check of a flagged withdrawal by an officer who
   took no part in the case.

Revision ID: 0012_guard_structural
Revises: 0010
"""
import os

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = "0012_guard_structural"
down_revision = "0010"
branch_labels = None
depends_on = None

APP_ROLE = os.environ.get("SANQUAN_APP_ROLE", "sanquan_app")

# Tables the app inserts into and never changes (UPDATE revoked; their triggers refuse too).
APPEND_ONLY = ("audit_log", "hukou_move", "land_right_parcel", "withdrawal_consent",
               "court_judgment", "expropriation", "charter_clause")

PRIVILEGES = r"""
DO $$
DECLARE t record;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{app}') THEN
    RAISE EXCEPTION 'role {app} is missing: run scripts/pg.sh ensure <DATABASE_URL> (or create a LOGIN role without superuser, createdb, createrole) before migrating';
  END IF;
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{app}' AND (rolsuper OR rolbypassrls)) THEN
    RAISE EXCEPTION 'role {app} must not be a superuser nor bypass row security';
  END IF;
  REVOKE ALL ON SCHEMA public FROM {app};
  GRANT USAGE ON SCHEMA public TO {app};
  FOR t IN SELECT c.oid::regclass AS name, c.relkind FROM pg_class c
           JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = 'public' AND c.relkind IN ('r','p','v','S')
             AND pg_has_role(c.relowner, 'USAGE')
             AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                             AND d.objid = c.oid AND d.deptype = 'e')
  LOOP
    EXECUTE format('REVOKE ALL ON %s FROM {app}', t.name);
    IF t.relkind = 'S' THEN
      EXECUTE format('GRANT USAGE, SELECT ON %s TO {app}', t.name);
    ELSE
      EXECUTE format('GRANT SELECT, INSERT, UPDATE ON %s TO {app}', t.name);
    END IF;
  END LOOP;
  -- Later tables of this owner: S/I/U/D; each migration REVOKEs what its tables never allow.
  EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {app}', current_user);
  EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {app}', current_user);
END $$;
"""

GUARD = r"""
-- ---------------------------------------------------------------- a right: proof and history
CREATE OR REPLACE FUNCTION land_right_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    RAISE EXCEPTION 'right.history: a right is never deleted; it ends on a lawful ground'
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  IF OLD.status = 'ended' OR OLD.end_lifespan IS NOT NULL THEN
    RAISE EXCEPTION 'right.history: an ended or superseded right is history and is never rewritten'
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  IF NEW.status = 'ended' AND coalesce(NEW.end_ground, '') NOT IN
     ('expiry','voluntary_withdrawal','expropriation','court_judgment','mutation','holder_extinct') THEN
    RAISE EXCEPTION 'right.end.forbidden_ground: a right may not end on ground "%"; settling in town is never a ground (农村土地承包法 art 27; 乡村振兴促进法 art 55)', NEW.end_ground
      USING ERRCODE = 'check_violation';
  END IF;
  IF (to_jsonb(NEW) - 'status' - 'end_ground' - 'end_evidence' - 'ended_on' - 'end_lifespan' - 'end_record_id')
     <> (to_jsonb(OLD) - 'status' - 'end_ground' - 'end_evidence' - 'ended_on' - 'end_lifespan' - 'end_record_id') THEN
    RAISE EXCEPTION 'right.history: a right changes by a new version, never in place'
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  IF NEW.status = 'current' AND NEW.end_record_id IS NOT NULL THEN
    RAISE EXCEPTION 'right.history: a current right carries no end record'
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  IF NEW.status = 'ended' AND NEW.end_lifespan IS NOT NULL THEN
    RAISE EXCEPTION 'right.end.silent: a right ends by its recorded end, not by also closing its lifespan'
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  RETURN NEW;
END $$;

-- Named to fire after land_right_hukou_guard (0009): triggers fire in name order.
CREATE OR REPLACE FUNCTION land_right_proof() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.status = 'ended' AND OLD.status = 'current' THEN
    PERFORM land_right_end_proof(NEW);
  END IF;
  RETURN NEW;
END $$;

CREATE OR REPLACE FUNCTION land_right_end_proof(r land_right) RETURNS void LANGUAGE plpgsql AS $$
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
  END CASE;
END $$;

-- A new version continues the same right of the same holder; it never hands it to another.
CREATE OR REPLACE FUNCTION land_right_version_guard() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE prev record;
BEGIN
  IF NEW.version > 1 THEN
    SELECT * INTO prev FROM land_right WHERE uid = NEW.uid AND version = NEW.version - 1;
    IF prev IS NULL OR prev.end_lifespan IS NULL OR prev.status <> 'current' THEN
      RAISE EXCEPTION 'right.history: version % of right % follows only a current version closed in the same change', NEW.version, NEW.uid
        USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF NEW.kind IS DISTINCT FROM prev.kind
       OR NEW.holder_household_code IS DISTINCT FROM prev.holder_household_code
       OR NEW.holder_person_id IS DISTINCT FROM prev.holder_person_id THEN
      RAISE EXCEPTION 'right.end.silent: a new version of right % keeps its kind and holder; a right passes to another only by its recorded end (农村土地承包法 art 27, 34)', NEW.uid
        USING ERRCODE = 'integrity_constraint_violation';
    END IF;
  END IF;
  IF NEW.status <> 'current' OR NEW.end_lifespan IS NOT NULL THEN
    RAISE EXCEPTION 'right.history: a right is recorded current; it ends by its recorded end'
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER land_right_version_guard BEFORE INSERT ON land_right
  FOR EACH ROW EXECUTE FUNCTION land_right_version_guard();
CREATE TRIGGER land_right_proof BEFORE UPDATE ON land_right
  FOR EACH ROW EXECUTE FUNCTION land_right_proof();

-- Closing a version's lifespan is not an end: checked at commit that its successor exists.
CREATE OR REPLACE FUNCTION land_right_no_silent_exit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM land_right WHERE uid = NEW.uid AND version = NEW.version + 1) THEN
    RAISE EXCEPTION 'right.end.silent: right % left the register without a recorded end: a right ends only on a lawful ground with its proof, or continues in a new version (农村土地承包法 art 27; 乡村振兴促进法 art 55)', NEW.uid
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER land_right_no_silent_exit AFTER UPDATE OF end_lifespan ON land_right
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
  WHEN (OLD.end_lifespan IS NULL AND NEW.end_lifespan IS NOT NULL)
  EXECUTE FUNCTION land_right_no_silent_exit();

-- Records behind a ground: kept as made.
CREATE OR REPLACE FUNCTION guard_record_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '%.history: % refused: a record behind a lawful ground is kept as made', TG_TABLE_NAME, TG_OP
    USING ERRCODE = 'integrity_constraint_violation';
END $$;
CREATE TRIGGER court_judgment_append_only BEFORE UPDATE OR DELETE ON court_judgment
  FOR EACH ROW EXECUTE FUNCTION guard_record_append_only();
CREATE TRIGGER expropriation_append_only BEFORE UPDATE OR DELETE ON expropriation
  FOR EACH ROW EXECUTE FUNCTION guard_record_append_only();
CREATE TRIGGER charter_clause_append_only BEFORE UPDATE OR DELETE ON charter_clause
  FOR EACH ROW EXECUTE FUNCTION guard_record_append_only();
CREATE TRIGGER withdrawal_consent_append_only BEFORE UPDATE OR DELETE ON withdrawal_consent
  FOR EACH ROW EXECUTE FUNCTION guard_record_append_only();

-- ---------------------------------------------------------------- households and their places
CREATE OR REPLACE FUNCTION household_member_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    RAISE EXCEPTION 'household.member.history: a household place is never deleted; it ends on its ground and a new row begins'
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  IF TG_OP = 'INSERT' THEN
    IF NEW.left_on IS NOT NULL OR NEW.end_ground IS NOT NULL THEN
      RAISE EXCEPTION 'household.member.history: a household place begins current'
        USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
  END IF;
  IF OLD.left_on IS NOT NULL THEN
    RAISE EXCEPTION 'household.member.history: an ended household place is history and is never rewritten'
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  IF (to_jsonb(NEW) - 'left_on' - 'end_ground') <> (to_jsonb(OLD) - 'left_on' - 'end_ground') THEN
    RAISE EXCEPTION 'household.member.history: a household place changes by a new row, never in place'
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  IF NEW.left_on IS NULL OR NEW.end_ground IS NULL THEN
    RAISE EXCEPTION 'household.member.silent: a household place ends only with its date and its lawful ground (death, joining another household, household division, loss of nationality, a new version); moving the hukou or settling in town is never one (乡村振兴促进法 art 55; 农村土地承包法 art 27)'
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER household_member_versioned BEFORE INSERT OR UPDATE OR DELETE ON household_member
  FOR EACH ROW EXECUTE FUNCTION household_member_guard();

-- The grounds that say a place continues elsewhere are checked at commit.
CREATE OR REPLACE FUNCTION household_member_successor() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.end_ground = 'superseded' AND NOT EXISTS (
       SELECT 1 FROM household_member m WHERE m.household_id = NEW.household_id
         AND m.person_id = NEW.person_id AND m.left_on IS NULL) THEN
    RAISE EXCEPTION 'household.member.silent: the place of person % was "superseded" by no new row', NEW.person_id
      USING ERRCODE = 'check_violation';
  END IF;
  IF NEW.end_ground IN ('joined_other_household', 'household_division') AND NOT EXISTS (
       SELECT 1 FROM household_member m WHERE m.household_id <> NEW.household_id
         AND m.person_id = NEW.person_id AND m.left_on IS NULL) THEN
    RAISE EXCEPTION 'household.member.silent: person % left for another household but holds no place in one', NEW.person_id
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER household_member_successor AFTER UPDATE OF left_on ON household_member
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.left_on IS NOT NULL)
  EXECUTE FUNCTION household_member_successor();

CREATE OR REPLACE FUNCTION household_end_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.ended_on IS NOT NULL AND (NEW.ended_on IS DISTINCT FROM OLD.ended_on
                                   OR NEW.end_ground IS DISTINCT FROM OLD.end_ground) THEN
    RAISE EXCEPTION 'household.history: an ended household stays ended'
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  IF OLD.ended_on IS NULL AND NEW.ended_on IS NOT NULL THEN
    IF EXISTS (SELECT 1 FROM household_member WHERE household_id = NEW.id AND left_on IS NULL) THEN
      RAISE EXCEPTION 'household.end.members: household % still has members; it ends only when every place has ended on its ground', NEW.cbfbm
        USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.end_ground = 'all_members_deceased' AND EXISTS (
         SELECT 1 FROM household_member WHERE household_id = NEW.id AND end_ground <> 'death'
           AND end_ground <> 'superseded') THEN
      RAISE EXCEPTION 'household.end.ground: not every member of household % has died', NEW.cbfbm
        USING ERRCODE = 'check_violation';
    END IF;
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER household_end_guard BEFORE UPDATE OF ended_on, end_ground ON household
  FOR EACH ROW EXECUTE FUNCTION household_end_guard();

-- ---------------------------------------------------------------- membership and the charter
CREATE OR REPLACE FUNCTION charter_clause_lawful() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE t text := regexp_replace(lower(NEW.text), '[[:space:][:punct:]　，。；：、“”‘’（）《》]', '', 'g');
BEGIN
  IF NEW.ends_membership AND t ~ '(户口|户籍|落户|进城|城镇|迁出|迁走|迁往|迁离|外迁|农转非|非农|居住|常住|外出|离村|离开本村|不在本村|定居|城里|城市|市民)' THEN
    RAISE EXCEPTION 'charter.clause.unlawful: a charter clause may not end membership for moving the hukou, settling in town or living elsewhere (乡村振兴促进法 art 55; 农村集体经济组织法 art 17)'
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER charter_clause_lawful BEFORE INSERT ON charter_clause
  FOR EACH ROW EXECUTE FUNCTION charter_clause_lawful();

CREATE OR REPLACE FUNCTION membership_end_proof() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.status = 'ended' AND OLD.status = 'active' AND NEW.end_ground = 'law_or_charter' THEN
    IF NEW.end_charter_clause_id IS NOT NULL THEN
      IF NOT EXISTS (SELECT 1 FROM charter_clause c WHERE c.id = NEW.end_charter_clause_id
                     AND c.collective_id = NEW.collective_id AND c.ends_membership
                     AND c.adopted_on <= NEW.ended_on) THEN
        RAISE EXCEPTION 'membership.end.charter_basis: clause % is not a membership-ending clause of this collective''s charter in force on % (农村集体经济组织法 art 17)', NEW.end_charter_clause_id, NEW.ended_on
          USING ERRCODE = 'check_violation';
      END IF;
    ELSIF NEW.end_law IS NULL OR NEW.end_article IS NULL THEN
      RAISE EXCEPTION 'membership.end.charter_basis: membership ends on "law or charter" only with an article of a named law or a clause of the collective''s charter register (农村集体经济组织法 art 17)'
        USING ERRCODE = 'check_violation';
    END IF;
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER membership_proof BEFORE UPDATE ON membership
  FOR EACH ROW EXECUTE FUNCTION membership_end_proof();

-- ---------------------------------------------------------------- the withdrawal state machine
CREATE OR REPLACE FUNCTION withdrawal_staff(who text) RETURNS boolean LANGUAGE sql STABLE AS $$
  SELECT EXISTS (SELECT 1 FROM app_user WHERE username = who AND active
                 AND role IN ('bureau_staff','collective_officer','admin'))
$$;

CREATE OR REPLACE FUNCTION withdrawal_missing_consents(w withdrawal, on_day date) RETURNS bigint
LANGUAGE sql STABLE AS $$
  SELECT count(*) FROM household_member hm JOIN household hh ON hh.id = hm.household_id
  JOIN person p ON p.id = hm.person_id
  WHERE hh.cbfbm = w.household_code AND hm.left_on IS NULL AND hm.is_coholder
    AND p.birth_date <= on_day - interval '18 years'
    AND NOT EXISTS (SELECT 1 FROM withdrawal_consent c WHERE c.withdrawal_id = w.id
                    AND c.person_id = p.id)
$$;

CREATE OR REPLACE FUNCTION withdrawal_participants(w withdrawal) RETURNS text[]
LANGUAGE sql STABLE AS $$
  SELECT array_remove(ARRAY[w.started_by, w.witnessed_by, w.compensation_by, w.paid_by]
    || coalesce((SELECT array_agg(c.recorded_by) FROM withdrawal_consent c WHERE c.withdrawal_id = w.id), '{}')
    || coalesce((SELECT array_agg(mv.moved_by) FROM hukou_move mv
                 JOIN household_member hm ON hm.person_id = mv.person_id
                 JOIN household hh ON hh.id = hm.household_id AND hh.cbfbm = w.household_code
                 WHERE mv.application_id IS NOT NULL), '{}'), NULL)
$$;

CREATE OR REPLACE FUNCTION withdrawal_state_machine() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE src text := CASE WHEN TG_OP = 'INSERT' THEN NULL ELSE OLD.status END;
BEGIN
  IF TG_OP = 'INSERT' THEN
    IF NEW.status <> 'consent' OR NEW.effective_on IS NOT NULL OR NEW.checked_by IS NOT NULL
       OR NEW.paid_on IS NOT NULL OR NEW.compensation IS NOT NULL OR NEW.revoked_on IS NOT NULL THEN
      RAISE EXCEPTION 'withdrawal.state: a withdrawal begins at "consent"; it reaches every later state only through its steps (source document item 14; 农村土地承包法 art 27, 30)'
        USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.started_via = 'own_account' AND NOT EXISTS (
         SELECT 1 FROM app_user u WHERE u.username = NEW.started_by AND u.role = 'farmer'
           AND u.active AND u.household_code = NEW.household_code) THEN
      RAISE EXCEPTION 'withdrawal.not_holder: a withdrawal from an account is started by the holder household''s own account only (农村土地承包法 art 27; 乡村振兴促进法 art 55)'
        USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.started_via = 'in_person' AND NOT (
         withdrawal_staff(NEW.started_by) AND withdrawal_staff(NEW.witnessed_by)
         AND NEW.witnessed_by <> NEW.started_by
         AND length(NEW.statement_file) > 0
         AND NEW.statement_sha256 = encode(sha256(NEW.statement_file), 'hex')) THEN
      RAISE EXCEPTION 'withdrawal.statement: a withdrawal made in person needs the holder''s signed statement kept (the file) and a second officer as witness (source document item 14; 农村土地承包法 art 27)'
        USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
  END IF;
  IF (to_jsonb(NEW) - 'status' - 'compensation' - 'compensation_agreed_on' - 'compensation_by'
        - 'paid_on' - 'paid_reference' - 'paid_by' - 'checked_by' - 'checked_at' - 'interview'
        - 'effective_on' - 'revoked_on' - 'revoked_by')
     <> (to_jsonb(OLD) - 'status' - 'compensation' - 'compensation_agreed_on' - 'compensation_by'
        - 'paid_on' - 'paid_reference' - 'paid_by' - 'checked_by' - 'checked_at' - 'interview'
        - 'effective_on' - 'revoked_on' - 'revoked_by') THEN
    RAISE EXCEPTION 'withdrawal.history: who started a withdrawal, how, of what and whether it is flagged are fixed'
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  IF OLD.checked_by IS NOT NULL AND NEW.checked_by IS DISTINCT FROM OLD.checked_by THEN
    RAISE EXCEPTION 'withdrawal.history: the voluntariness check is recorded once'
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  IF NOT ((src IN ('consent','check','cooling') AND NEW.status IN ('consent','check','cooling','revoked'))
          OR (src = 'cooling' AND NEW.status = 'effective')) THEN
    RAISE EXCEPTION 'withdrawal.state: % → % is not a step of the procedure', src, NEW.status
      USING ERRCODE = 'check_violation';
  END IF;
  IF NEW.checked_by IS NOT NULL AND OLD.checked_by IS NULL THEN
    IF NOT OLD.flagged OR NOT withdrawal_staff(NEW.checked_by)
       OR NEW.checked_by = ANY (withdrawal_participants(NEW)) THEN
      RAISE EXCEPTION 'withdrawal.checker: the voluntariness check of a flagged withdrawal is made by an officer who took no part in the case (not the starter, witness, consent, compensation or payment recorder, nor the settlement officer) (农村土地承包法 art 27; 乡村振兴促进法 art 55)'
        USING ERRCODE = 'check_violation';
    END IF;
  END IF;
  IF NEW.checked_by IS NOT NULL AND (NEW.compensation_by = NEW.checked_by OR NEW.paid_by = NEW.checked_by) THEN
    RAISE EXCEPTION 'withdrawal.checker: the officer who checked voluntariness takes no other part in the case'
      USING ERRCODE = 'check_violation';
  END IF;
  IF NEW.status IN ('cooling', 'effective') THEN
    IF withdrawal_missing_consents(NEW, coalesce(NEW.effective_on, current_date)) > 0 THEN
      RAISE EXCEPTION 'withdrawal.consent: every adult co-holder agrees for themselves first (source document item 14)'
        USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.flagged AND NEW.checked_by IS NULL THEN
      RAISE EXCEPTION 'withdrawal.voluntariness: a flagged withdrawal goes on only after the voluntariness check (农村土地承包法 art 27; 乡村振兴促进法 art 55)'
        USING ERRCODE = 'check_violation';
    END IF;
  END IF;
  IF (NEW.compensation_by IS DISTINCT FROM OLD.compensation_by AND NOT withdrawal_staff(NEW.compensation_by))
     OR (NEW.paid_by IS DISTINCT FROM OLD.paid_by AND NOT withdrawal_staff(NEW.paid_by)) THEN
    RAISE EXCEPTION 'withdrawal.recorder: compensation and payment are recorded by a bureau or collective officer under their own name'
      USING ERRCODE = 'check_violation';
  END IF;
  IF NEW.status = 'revoked' AND NOT (withdrawal_staff(NEW.revoked_by) OR EXISTS (
       SELECT 1 FROM app_user u WHERE u.username = NEW.revoked_by AND u.role = 'farmer'
         AND u.household_code = NEW.household_code)) THEN
    RAISE EXCEPTION 'withdrawal.not_holder: a withdrawal is revoked by the holder household or an officer for them'
      USING ERRCODE = 'check_violation';
  END IF;
  IF NEW.status = 'effective' AND (NEW.compensation_by IS NULL OR NEW.paid_by IS NULL) THEN
    RAISE EXCEPTION 'withdrawal.unpaid: the compensation is agreed and paid, each recorded by its officer, before the withdrawal takes effect'
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER withdrawal_state_machine BEFORE INSERT OR UPDATE ON withdrawal
  FOR EACH ROW EXECUTE FUNCTION withdrawal_state_machine();

CREATE OR REPLACE FUNCTION withdrawal_consent_own() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE w withdrawal;
BEGIN
  SELECT * INTO w FROM withdrawal WHERE id = NEW.withdrawal_id;
  IF w.status NOT IN ('consent', 'check', 'cooling') THEN
    RAISE EXCEPTION 'withdrawal.state: withdrawal % is %', w.id, w.status USING ERRCODE = 'check_violation';
  END IF;
  IF NOT (
      (NEW.via = 'own_account' AND EXISTS (SELECT 1 FROM app_user u WHERE u.username = NEW.recorded_by
                                           AND u.active AND u.person_id = NEW.person_id))
      OR (NEW.via = 'in_person' AND withdrawal_staff(NEW.recorded_by) AND length(NEW.document) > 0
          AND NEW.document_sha256 = encode(sha256(NEW.document), 'hex'))) THEN
    RAISE EXCEPTION 'withdrawal.consent_person: each co-holder consents for themselves — from their own account, or in person with their signed agreement kept (the file) (source document item 14)'
      USING ERRCODE = 'check_violation';
  END IF;
  IF NEW.recorded_by = w.checked_by THEN
    RAISE EXCEPTION 'withdrawal.checker: the officer who checked voluntariness takes no other part in the case'
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER withdrawal_consent_own BEFORE INSERT ON withdrawal_consent
  FOR EACH ROW EXECUTE FUNCTION withdrawal_consent_own();
"""

# What the app did as a superuser and may no longer do itself: the owner does it for it, for
# exactly these tables (SECURITY DEFINER, a fixed search_path, EXECUTE for the app role only).
OWNER_SERVICES = r"""
CREATE OR REPLACE FUNCTION staging_batch_index(b integer) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
  EXECUTE format('CREATE INDEX IF NOT EXISTS import_feature_geom_b%s ON import_feature '
                 'USING gist (geom) WHERE batch_id = %s', b, b);
END $$;
CREATE OR REPLACE FUNCTION refresh_statistics(t text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
  IF t NOT IN ('parcel', 'import_feature') THEN
    RAISE EXCEPTION 'refresh_statistics: % is not on the list', t;
  END IF;
  EXECUTE format('ANALYZE %I', t);
END $$;
REVOKE ALL ON FUNCTION staging_batch_index(integer), refresh_statistics(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION staging_batch_index(integer), refresh_statistics(text) TO {app};
"""

DROP_GUARD = """
DROP TRIGGER IF EXISTS withdrawal_consent_own ON withdrawal_consent;
DROP TRIGGER IF EXISTS withdrawal_state_machine ON withdrawal;
DROP TRIGGER IF EXISTS membership_proof ON membership;
DROP TRIGGER IF EXISTS household_end_guard ON household;
DROP TRIGGER IF EXISTS household_member_successor ON household_member;
DROP TRIGGER IF EXISTS household_member_versioned ON household_member;
DROP TRIGGER IF EXISTS withdrawal_consent_append_only ON withdrawal_consent;
DROP TRIGGER IF EXISTS land_right_no_silent_exit ON land_right;
DROP TRIGGER IF EXISTS land_right_version_guard ON land_right;
DROP TRIGGER IF EXISTS land_right_proof ON land_right;
"""

DROP_FUNCTIONS = """
DROP FUNCTION IF EXISTS withdrawal_consent_own, withdrawal_state_machine, withdrawal_participants,
  withdrawal_missing_consents, withdrawal_staff, membership_end_proof, charter_clause_lawful,
  household_end_guard, household_member_successor, household_member_guard,
  guard_record_append_only, land_right_no_silent_exit, land_right_version_guard,
  land_right_proof, land_right_end_proof, staging_batch_index, refresh_statistics;
"""

# 0005's guard, restored on downgrade (this migration's text, not a read of 0005's file).
GUARD_0005 = r"""
CREATE OR REPLACE FUNCTION land_right_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    RAISE EXCEPTION 'right.history: a right is never deleted; it ends on a lawful ground'
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  IF OLD.status = 'ended' OR OLD.end_lifespan IS NOT NULL THEN
    RAISE EXCEPTION 'right.history: an ended or superseded right is history and is never rewritten'
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  IF NEW.status = 'ended' AND coalesce(NEW.end_ground, '') NOT IN
     ('expiry','voluntary_withdrawal','expropriation','court_judgment','mutation','holder_extinct') THEN
    RAISE EXCEPTION 'right.end.forbidden_ground: a right may not end on ground "%"; settling in town is never a ground (农村土地承包法 art 27; 乡村振兴促进法 art 55)', NEW.end_ground
      USING ERRCODE = 'check_violation';
  END IF;
  IF (to_jsonb(NEW) - 'status' - 'end_ground' - 'end_evidence' - 'ended_on' - 'end_lifespan')
     <> (to_jsonb(OLD) - 'status' - 'end_ground' - 'end_evidence' - 'ended_on' - 'end_lifespan') THEN
    RAISE EXCEPTION 'right.history: a right changes by a new version, never in place'
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  RETURN NEW;
END $$;
"""


def upgrade():
    op.create_table(
        "court_judgment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("right_uid", sa.BigInteger(), nullable=False),
        sa.Column("court", sa.String(length=100), nullable=False),
        sa.Column("case_number", sa.String(length=60), nullable=False),
        sa.Column("judged_on", sa.Date(), nullable=False),
        sa.Column("filename", sa.String(length=200), nullable=False),
        sa.Column("file", postgresql.BYTEA(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("recorded_by", sa.String(length=50), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), server_default=sa.text("now()"),
                  nullable=False),
        sa.CheckConstraint("length(trim(court)) > 0 AND length(trim(case_number)) > 0",
                           name=op.f("ck_court_judgment_named")),
        sa.CheckConstraint("length(file) > 0 AND sha256 = encode(sha256(file), 'hex')",
                           name=op.f("ck_court_judgment_file_kept")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_court_judgment")),
        sa.UniqueConstraint("court", "case_number", "right_uid", name="uq_court_judgment_case"),
    )
    op.create_index(op.f("ix_court_judgment_right_uid"), "court_judgment", ["right_uid"])
    op.create_table(
        "expropriation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("right_uid", sa.BigInteger(), nullable=False),
        sa.Column("authority", sa.String(length=100), nullable=False),
        sa.Column("decision_number", sa.String(length=60), nullable=False),
        sa.Column("decided_on", sa.Date(), nullable=False),
        sa.Column("compensation", sa.Numeric(14, 2), nullable=False),
        sa.Column("filename", sa.String(length=200), nullable=False),
        sa.Column("file", postgresql.BYTEA(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("recorded_by", sa.String(length=50), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), server_default=sa.text("now()"),
                  nullable=False),
        sa.CheckConstraint("compensation > 0", name=op.f("ck_expropriation_compensated")),
        sa.CheckConstraint("length(file) > 0 AND sha256 = encode(sha256(file), 'hex')",
                           name=op.f("ck_expropriation_file_kept")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_expropriation")),
    )
    op.create_index(op.f("ix_expropriation_right_uid"), "expropriation", ["right_uid"])
    op.create_table(
        "charter_clause",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("collective_id", sa.Integer(), nullable=False),
        sa.Column("clause_no", sa.String(length=20), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("ends_membership", sa.Boolean(), server_default=sa.text("false"),
                  nullable=False),
        sa.Column("adopted_on", sa.Date(), nullable=False),
        sa.Column("recorded_by", sa.String(length=50), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), server_default=sa.text("now()"),
                  nullable=False),
        sa.CheckConstraint("length(trim(text)) > 0", name=op.f("ck_charter_clause_text")),
        sa.ForeignKeyConstraint(["collective_id"], ["collective.id"],
                                name=op.f("fk_charter_clause_collective_id_collective")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_charter_clause")),
        sa.UniqueConstraint("collective_id", "clause_no", name="uq_charter_clause_no"),
    )
    op.create_index(op.f("ix_charter_clause_collective_id"), "charter_clause", ["collective_id"])

    op.add_column("land_right", sa.Column("end_record_id", sa.Integer(), nullable=True))
    op.add_column("household", sa.Column("end_ground", sa.String(length=30), nullable=True))
    op.create_check_constraint(
        op.f("ck_household_ended_on_its_ground"), "household",
        "(ended_on IS NULL AND end_ground IS NULL) OR (ended_on IS NOT NULL AND end_ground IN "
        "('all_members_deceased','all_members_left'))")
    op.add_column("household_member", sa.Column("end_ground", sa.String(length=30),
                                                nullable=True))
    op.create_check_constraint(
        op.f("ck_household_member_left_on_its_ground"), "household_member",
        "(left_on IS NULL AND end_ground IS NULL) OR (left_on IS NOT NULL AND end_ground IN "
        "('death','joined_other_household','household_division','nationality_lost',"
        "'superseded'))")
    op.add_column("membership", sa.Column("end_law", sa.String(length=60), nullable=True))
    op.add_column("membership", sa.Column("end_article", sa.String(length=20), nullable=True))
    op.add_column("membership", sa.Column("end_charter_clause_id", sa.Integer(),
                                          sa.ForeignKey("charter_clause.id",
                                                        name="fk_membership_end_charter_clause_id_charter_clause"),
                                          nullable=True))
    op.create_check_constraint(
        op.f("ck_membership_charter_ground_cites_clause"), "membership",
        "end_ground IS DISTINCT FROM 'law_or_charter' OR end_charter_clause_id IS NOT NULL "
        "OR (length(trim(end_law)) > 0 AND length(trim(end_article)) > 0)")
    op.add_column("withdrawal", sa.Column("statement_file", postgresql.BYTEA(), nullable=True))
    op.add_column("withdrawal", sa.Column("witnessed_by", sa.String(length=50), nullable=True))
    op.add_column("withdrawal", sa.Column("compensation_by", sa.String(length=50),
                                          nullable=True))
    op.add_column("withdrawal", sa.Column("paid_by", sa.String(length=50), nullable=True))
    op.create_check_constraint(
        op.f("ck_withdrawal_in_person_kept_and_witnessed"), "withdrawal",
        "started_via = 'own_account' OR (statement_file IS NOT NULL AND witnessed_by IS NOT NULL "
        "AND witnessed_by <> started_by)")
    op.add_column("withdrawal_consent", sa.Column("via", sa.String(length=12),
                                                  server_default="in_person", nullable=False))
    op.add_column("withdrawal_consent", sa.Column("document", postgresql.BYTEA(),
                                                  nullable=True))
    op.add_column("withdrawal_consent", sa.Column("document_filename", sa.String(length=200),
                                                  nullable=True))
    op.create_check_constraint(
        op.f("ck_withdrawal_consent_via"), "withdrawal_consent",
                               "via IN ('own_account','in_person')")
    op.create_check_constraint(
        op.f("ck_withdrawal_consent_in_person_document_kept"), "withdrawal_consent",
                               "via = 'own_account' OR document IS NOT NULL")
    op.execute(GUARD)
    op.execute(PRIVILEGES.replace("{app}", APP_ROLE))
    op.execute(OWNER_SERVICES.replace("{app}", APP_ROLE))
    for table in APPEND_ONLY:
        op.execute(f"REVOKE UPDATE, DELETE, TRUNCATE ON {table} FROM {APP_ROLE}")
    op.execute(f"REVOKE INSERT, UPDATE, DELETE ON alembic_version FROM {APP_ROLE}")


def downgrade():
    op.execute(DROP_GUARD)
    op.execute(GUARD_0005)
    op.drop_constraint("ck_withdrawal_consent_in_person_document_kept", "withdrawal_consent")
    op.drop_constraint("ck_withdrawal_consent_via", "withdrawal_consent")
    for c in ("document_filename", "document", "via"):
        op.drop_column("withdrawal_consent", c)
    op.drop_constraint("ck_withdrawal_in_person_kept_and_witnessed", "withdrawal")
    for c in ("paid_by", "compensation_by", "witnessed_by", "statement_file"):
        op.drop_column("withdrawal", c)
    op.drop_constraint("ck_membership_charter_ground_cites_clause", "membership")
    for c in ("end_charter_clause_id", "end_article", "end_law"):
        op.drop_column("membership", c)
    op.drop_constraint("ck_household_member_left_on_its_ground", "household_member")
    op.drop_column("household_member", "end_ground")
    op.drop_constraint("ck_household_ended_on_its_ground", "household")
    op.drop_column("household", "end_ground")
    op.drop_column("land_right", "end_record_id")
    op.drop_table("charter_clause")
    op.drop_table("expropriation")
    op.drop_table("court_judgment")
    op.execute(DROP_FUNCTIONS)
    op.execute(f"""DO $$ BEGIN
      EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA public REVOKE ALL ON TABLES FROM {APP_ROLE}', current_user);
      EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA public REVOKE ALL ON SEQUENCES FROM {APP_ROLE}', current_user);
    END $$""")
