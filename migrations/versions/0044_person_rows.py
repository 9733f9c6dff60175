"""Rules about "this person" read every row of their ID number (issue 18 §3; docs/scaling.md §3).

The person row is to become one per county (0045_citus_person): a person placed on the rolls
of two counties (a household place, a membership, a right held) has a row in each, with the
same ID number and ids of their own.  Before that split, every database rule that reasons
about the human rather than the row reads all rows of the ID number, so that none of them sees
one county only:

- withdrawal_flag_after_settlement(): a withdrawal started within the check window after a
  settlement in town of a member of the household is flagged; the settlement may name the
  person's row of another county than the household's (their own county's roll put them in
  town), so the hukou move is matched to the household place by ID number.
- withdrawal_participants(): the settlement officers of those moves take no part in the
  voluntariness check, matched the same way.
- withdrawal_consent_own(): a consent "from one's own account" names the co-holder's row in the
  household's county; the account may name the same person's row of another county.
- household_member_successor(): a place that ended on "joined another household" needs a
  current place in another household, which may be in another county (marrying into another
  county's village), under the person's row there.

Only the function bodies change (same signatures, same triggers).

Revision ID: 0044_person_rows
Revises: 0043_atk_db2
"""
from alembic import op

revision = "0044_person_rows"
down_revision = "0043_atk_db2"
branch_labels = None
depends_on = None

# the bodies as they stand after this migration
NEW = {
    "withdrawal_participants": """
CREATE OR REPLACE FUNCTION public.withdrawal_participants(w withdrawal)
 RETURNS text[]
 LANGUAGE sql
 STABLE
 SET search_path TO 'public', 'pg_temp'
AS $function$
  SELECT array_remove(ARRAY[w.started_by, w.witnessed_by, w.compensation_by, w.paid_by]
    || coalesce((SELECT array_agg(c.recorded_by) FROM withdrawal_consent c WHERE c.withdrawal_id = w.id), '{}')
    || coalesce((SELECT array_agg(mv.moved_by) FROM hukou_move mv
                 JOIN person mp ON mp.id = mv.person_id JOIN person hp ON hp.id_number = mp.id_number
                 JOIN household_member hm ON hm.person_id = hp.id
                 JOIN household hh ON hh.id = hm.household_id AND hh.cbfbm = w.household_code
                 WHERE mv.application_id IS NOT NULL), '{}'), NULL)
$function$
""",
    "withdrawal_consent_own": """
CREATE OR REPLACE FUNCTION public.withdrawal_consent_own()
 RETURNS trigger
 LANGUAGE plpgsql
 SET search_path TO 'public', 'pg_temp'
AS $function$
DECLARE w withdrawal;
BEGIN
  SELECT * INTO w FROM withdrawal WHERE id = NEW.withdrawal_id;
  IF w.status NOT IN ('consent', 'check', 'cooling') THEN
    RAISE EXCEPTION 'withdrawal.state: withdrawal % is %', w.id, w.status USING ERRCODE = 'check_violation';
  END IF;
  IF NOT (
      (NEW.via = 'own_account' AND EXISTS (SELECT 1 FROM app_user u WHERE u.username = NEW.recorded_by
                                           AND u.active AND EXISTS (
                                             SELECT 1 FROM person up JOIN person cp
                                               ON cp.id_number = up.id_number
                                             WHERE up.id = u.person_id AND cp.id = NEW.person_id)))
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
END $function$
""",
    "withdrawal_flag_after_settlement": """
CREATE OR REPLACE FUNCTION public.withdrawal_flag_after_settlement()
 RETURNS trigger
 LANGUAGE plpgsql
 SET search_path TO 'public', 'pg_temp'
AS $function$
DECLARE mv record; win int;
BEGIN
  win := coalesce((SELECT value::int FROM registry_setting
                   WHERE key = 'withdrawal_check_window_days'), 180);
  SELECT m.moved_on, m.moved_by INTO mv FROM hukou_move m
    JOIN person mp ON mp.id = m.person_id JOIN person hp ON hp.id_number = mp.id_number
    JOIN household_member hm ON hm.person_id = hp.id
    JOIN household hh ON hh.id = hm.household_id AND hh.cbfbm = NEW.household_code
   WHERE m.application_id IS NOT NULL AND m.moved_on <= NEW.started_on
     AND (hm.joined_on IS NULL OR hm.joined_on <= m.moved_on)
     AND (hm.left_on IS NULL OR hm.left_on >= m.moved_on)
   ORDER BY m.moved_on DESC LIMIT 1;
  IF mv.moved_on IS NOT NULL AND NEW.started_on - mv.moved_on <= win THEN
    NEW.flagged := true;
    NEW.flag_reason := coalesce(NEW.flag_reason, format(
      'settled in town on %s (%s days before); settlement officer %s', mv.moved_on,
      NEW.started_on - mv.moved_on, mv.moved_by));
  END IF;
  RETURN NEW;
END $function$
""",
    "household_member_successor": """
CREATE OR REPLACE FUNCTION public.household_member_successor()
 RETURNS trigger
 LANGUAGE plpgsql
 SET search_path TO 'public', 'pg_temp'
AS $function$
BEGIN
  IF NEW.end_ground = 'superseded' AND NOT EXISTS (
       SELECT 1 FROM household_member m WHERE m.household_id = NEW.household_id
         AND m.person_id = NEW.person_id AND m.left_on IS NULL) THEN
    RAISE EXCEPTION 'household.member.silent: the place of person % was "superseded" by no new row', NEW.person_id
      USING ERRCODE = 'check_violation';
  END IF;
  IF NEW.end_ground IN ('joined_other_household', 'household_division') AND NOT EXISTS (
       SELECT 1 FROM household_member m WHERE m.household_id <> NEW.household_id
         AND m.person_id IN (SELECT q.id FROM person p JOIN person q ON q.id_number = p.id_number
                             WHERE p.id = NEW.person_id) AND m.left_on IS NULL) THEN
    RAISE EXCEPTION 'household.member.silent: person % left for another household but holds no place in one', NEW.person_id
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NULL;
END $function$
""",
}

# as 0012 left them (downgrade)
OLD = {
    "withdrawal_participants": """
CREATE OR REPLACE FUNCTION public.withdrawal_participants(w withdrawal)
 RETURNS text[]
 LANGUAGE sql
 STABLE
 SET search_path TO 'public', 'pg_temp'
AS $function$
  SELECT array_remove(ARRAY[w.started_by, w.witnessed_by, w.compensation_by, w.paid_by]
    || coalesce((SELECT array_agg(c.recorded_by) FROM withdrawal_consent c WHERE c.withdrawal_id = w.id), '{}')
    || coalesce((SELECT array_agg(mv.moved_by) FROM hukou_move mv
                 JOIN household_member hm ON hm.person_id = mv.person_id
                 JOIN household hh ON hh.id = hm.household_id AND hh.cbfbm = w.household_code
                 WHERE mv.application_id IS NOT NULL), '{}'), NULL)
$function$
""",
    "withdrawal_consent_own": """
CREATE OR REPLACE FUNCTION public.withdrawal_consent_own()
 RETURNS trigger
 LANGUAGE plpgsql
 SET search_path TO 'public', 'pg_temp'
AS $function$
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
END $function$
""",
    "withdrawal_flag_after_settlement": """
CREATE OR REPLACE FUNCTION public.withdrawal_flag_after_settlement()
 RETURNS trigger
 LANGUAGE plpgsql
 SET search_path TO 'public', 'pg_temp'
AS $function$
DECLARE mv record; win int;
BEGIN
  win := coalesce((SELECT value::int FROM registry_setting
                   WHERE key = 'withdrawal_check_window_days'), 180);
  SELECT m.moved_on, m.moved_by INTO mv FROM hukou_move m
    JOIN household_member hm ON hm.person_id = m.person_id
    JOIN household hh ON hh.id = hm.household_id AND hh.cbfbm = NEW.household_code
   WHERE m.application_id IS NOT NULL AND m.moved_on <= NEW.started_on
     AND (hm.joined_on IS NULL OR hm.joined_on <= m.moved_on)
     AND (hm.left_on IS NULL OR hm.left_on >= m.moved_on)
   ORDER BY m.moved_on DESC LIMIT 1;
  IF mv.moved_on IS NOT NULL AND NEW.started_on - mv.moved_on <= win THEN
    NEW.flagged := true;
    NEW.flag_reason := coalesce(NEW.flag_reason, format(
      'settled in town on %s (%s days before); settlement officer %s', mv.moved_on,
      NEW.started_on - mv.moved_on, mv.moved_by));
  END IF;
  RETURN NEW;
END $function$
""",
    "household_member_successor": """
CREATE OR REPLACE FUNCTION public.household_member_successor()
 RETURNS trigger
 LANGUAGE plpgsql
 SET search_path TO 'public', 'pg_temp'
AS $function$
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
END $function$
""",
}


def upgrade():
    for sql in NEW.values():
        op.execute(sql)


def downgrade():
    for sql in OLD.values():
        op.execute(sql)
