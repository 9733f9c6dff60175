"""guard attacks: the guard's functions read only the real tables

The app role may create temporary tables (the demo loader uses them).  A temporary table comes
first in the default search path, so a table named ``court_judgment``, ``expropriation``,
``household`` or ``withdrawal`` made in the app's own session stood in for the real one inside
the trigger functions: a made-up judgment, expropriation, ended household or effective
withdrawal ended a right "lawfully".  Every function of the schema (not the extensions') now
runs with ``search_path = public, pg_temp``: pg_temp last, so it can shadow nothing.

Also:
- a withdrawal started after a settlement in town of a person who was a member of the household
  at the move is flagged by the database itself (it was flagged by the operation only, so a row
  written on the app's connection went on without the check of voluntariness); the member who
  has left the household since still counts;
- the file names of a withdrawal's statement and consents, its payment reference and interview
  carry no land-for-hukou trade (guard_condition_text, a CHECK like 0013's on the other records);
- 0013's backstop read surrenders only on settlement text and settling only on certificate end
  reasons: a settlement note "附条件：以宅换房" and a certificate cancelled as an "error
  corrected" with the reason "交回土地承包经营权证" passed in SQL.  Settlement text now refuses
  trades too, a certificate's end reason refuses surrenders (except when the right really ended,
  on a withdrawal) and trades, and a hukou move's destination refuses both (its origin is copied from the person's record);
- a hukou move made today records the transaction that made it, whatever txid the writer
  gave: with txid 0 the guard "the transaction that moves a hukou changes nothing else"
  (0009) did not see the move, and the same transaction changed the household's places;
- a membership ended on law_or_charter cites an article as laws number them (第十七条第二款):
  the article was free text, so "17条（进城落户者）" carried the disguise past every check.

Revision ID: 0018_guard_attacks
Revises: 0016_market_trading
"""
from alembic import op

revision = "0018_guard_attacks"
down_revision = "0016_market_trading"
branch_labels = None
depends_on = None

PINNED = r"""
DO $$
DECLARE f record;
BEGIN
  FOR f IN
    SELECT p.oid::regprocedure AS sig FROM pg_proc p
    JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE n.nspname = 'public' AND p.prokind IN ('f', 'p')
      AND pg_get_userbyid(p.proowner) = current_user
      AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                      AND d.objid = p.oid AND d.deptype = 'e')
      AND NOT coalesce(p.proconfig, '{}') @> ARRAY['search_path=public, pg_temp']
  LOOP
    EXECUTE format('ALTER FUNCTION %s SET search_path = public, pg_temp', f.sig);
  END LOOP;
END $$;
"""

WITHDRAWAL = r"""
-- trades only: "作为落户条件" and "落户前提" are mostly written negated, as the rule
-- ("保留承包地不作为落户条件"); the application's detector reads the negation, a CHECK cannot
CREATE OR REPLACE FUNCTION guard_condition_text(t text) RETURNS boolean LANGUAGE sql
IMMUTABLE SET search_path = public, pg_temp AS $$
  SELECT guard_compact(t) ~ ('(以地换户|以地換戶|以地换房|以地換房|以宅换房|以宅換房|以地换保|'
    || '以地換保|土地换户口|土地換戶口|承包地换户口|承包地換戶口|宅基地换户口|宅基地換戶口|'
    || '退地落户|退地落戶|退地进城|退地進城|'
    || 'landforhukou|inexchangeforthehukou)')
$$;

ALTER TABLE withdrawal_consent ADD CONSTRAINT ck_withdrawal_consent_text_guard
  CHECK (document_filename IS NULL OR NOT guard_condition_text(document_filename)) NOT VALID;
ALTER TABLE withdrawal ADD CONSTRAINT ck_withdrawal_text_guard
  CHECK (NOT guard_condition_text(coalesce(statement_filename, '') || '|'
         || coalesce(paid_reference, '') || '|' || coalesce(interview, ''))) NOT VALID;

ALTER TABLE settlement_application ADD CONSTRAINT ck_settlement_application_condition_guard
  CHECK (NOT guard_condition_text(coalesce(decision_note, '') || '|' || residence_address
         || '|' || destination_address || '|' || coalesce(employer_name, '') || '|'
         || coalesce(police_station, ''))) NOT VALID;
ALTER TABLE settlement_document ADD CONSTRAINT ck_settlement_document_condition_guard
  CHECK (NOT guard_condition_text(filename)) NOT VALID;
ALTER TABLE hukou_move ADD CONSTRAINT ck_hukou_move_text_guard
  CHECK (NOT guard_surrender_text(to_address) AND NOT guard_condition_text(to_address)) NOT VALID;
ALTER TABLE certificate ADD CONSTRAINT ck_certificate_end_reason_surrender_guard
  CHECK (end_reason IS NULL OR (NOT guard_condition_text(end_reason || '|'
         || coalesce(end_reference, '')) AND (end_ground = 'right_ended'
         OR NOT guard_surrender_text(end_reason || '|' || coalesce(end_reference, ''))))) NOT VALID;

ALTER TABLE membership ADD CONSTRAINT ck_membership_end_article_format
  CHECK (end_article IS NULL OR end_article ~ ('^(第?[0-9一二三四五六七八九十百零〇两]+条'
         || '(第?[0-9一二三四五六七八九十百零〇两]+款)?(第?[0-9一二三四五六七八九十百零〇两]+项)?'
         || '|[0-9一二三四五六七八九十百零〇两]+)$')) NOT VALID;

CREATE OR REPLACE FUNCTION hukou_move_own_txid() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
  IF TG_OP = 'UPDATE' THEN
    NEW.txid := OLD.txid;
  ELSIF NEW.moved_on >= current_date THEN
    NEW.txid := txid_current();
  END IF;
  RETURN NEW;
END $$;
DROP TRIGGER IF EXISTS hukou_move_own_txid ON hukou_move;
CREATE TRIGGER hukou_move_own_txid BEFORE INSERT OR UPDATE ON hukou_move
  FOR EACH ROW EXECUTE FUNCTION hukou_move_own_txid();

CREATE OR REPLACE FUNCTION withdrawal_flag_after_settlement() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
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
END $$;
DROP TRIGGER IF EXISTS withdrawal_flag_after_settlement ON withdrawal;
CREATE TRIGGER withdrawal_flag_after_settlement BEFORE INSERT ON withdrawal
  FOR EACH ROW EXECUTE FUNCTION withdrawal_flag_after_settlement();
"""

DROP_WITHDRAWAL = """
DROP TRIGGER IF EXISTS withdrawal_flag_after_settlement ON withdrawal;
DROP FUNCTION IF EXISTS withdrawal_flag_after_settlement();
DROP TRIGGER IF EXISTS hukou_move_own_txid ON hukou_move;
DROP FUNCTION IF EXISTS hukou_move_own_txid();
ALTER TABLE withdrawal DROP CONSTRAINT IF EXISTS ck_withdrawal_text_guard;
ALTER TABLE withdrawal_consent DROP CONSTRAINT IF EXISTS ck_withdrawal_consent_text_guard;
ALTER TABLE membership DROP CONSTRAINT IF EXISTS ck_membership_end_article_format;
ALTER TABLE certificate DROP CONSTRAINT IF EXISTS ck_certificate_end_reason_surrender_guard;
ALTER TABLE hukou_move DROP CONSTRAINT IF EXISTS ck_hukou_move_text_guard;
ALTER TABLE settlement_document DROP CONSTRAINT IF EXISTS ck_settlement_document_condition_guard;
ALTER TABLE settlement_application DROP CONSTRAINT IF EXISTS
  ck_settlement_application_condition_guard;
DROP FUNCTION IF EXISTS guard_condition_text(text);
"""

UNPINNED = r"""
DO $$
DECLARE f record;
BEGIN
  FOR f IN
    SELECT p.oid::regprocedure AS sig FROM pg_proc p
    JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE n.nspname = 'public' AND p.prokind IN ('f', 'p') AND NOT p.prosecdef
      AND pg_get_userbyid(p.proowner) = current_user
      AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                      AND d.objid = p.oid AND d.deptype = 'e')
  LOOP
    EXECUTE format('ALTER FUNCTION %s RESET search_path', f.sig);
  END LOOP;
END $$;
"""


def upgrade():
    op.execute(PINNED)
    op.execute(WITHDRAWAL)


def downgrade():
    op.execute(DROP_WITHDRAWAL)
    op.execute(UNPINNED)
