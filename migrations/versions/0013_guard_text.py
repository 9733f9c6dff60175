"""guard text: closed lists of refusal reasons and certificate end grounds, the database's
backstop against disguised conditions in free text, the edition chain of a certificate after a
cancellation, the compliance supervisor role, and reports of coercion (举报)

- settlement_application.refusal_reasons: a refusal carries reasons from a closed list;
- certificate.end_ground / end_reference: superseded = new_edition; cancelled = right_ended
  (only once no current version of the right is left) or error_corrected (with a reference);
- certificate editions of one number follow each other (edition = last + 1, replacing the
  last), so a current right whose certificate was cancelled gets the next edition;
- guard_surrender_text() / guard_settlement_text() / guard_urban_text(): a compact normalisation (spaces,
  punctuation, zero-width characters removed, lower case) and the core wordings in simplified
  and traditional characters, as CHECKs on settlement notes, file names and addresses,
  membership end notes and certificate end reasons.  The application's detector
  (app/guardtext.py) reads far more (pinyin, entities, URL-encoding, euphemisms); this is the
  last line for writers that bypass it;
- app_user.role gains compliance_supervisor;
- coercion_report (what was reported never changes; status moves forward only, each change with
  its step) and coercion_report_step (insert-only).

Existing rows are not rewritten: the new CHECKs are NOT VALID (enforced on every new or changed
row).

Revision ID: 0013_guard_text
Revises: 0011_import_robust
"""
from alembic import op

revision = "0013_guard_text"
down_revision = "0011_import_robust"
branch_labels = None
depends_on = None

REFUSAL_REASONS = ("no_lawful_stable_residence", "residence_not_verified", "not_living_there",
                   "rental_not_registered", "permit_missing_or_invalid", "permit_other_town",
                   "persons_not_eligible", "documents_incomplete", "identity_not_verified",
                   "town_not_open", "duplicate_application")

UP = r"""
CREATE OR REPLACE FUNCTION guard_compact(t text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT lower(regexp_replace(
           translate(coalesce(t, ''), chr(8203) || chr(8204) || chr(8205) || chr(8288)
                     || chr(65279) || chr(173), ''),
           '[[:space:][:punct:]，。、；：！？（）【】《》“”‘’·…—～　]', '', 'g'))
$$;

-- giving up a right (农村土地承包法 art 27; 乡村振兴促进法 art 55)
CREATE OR REPLACE FUNCTION guard_surrender_text(t text) RETURNS boolean LANGUAGE sql
IMMUTABLE AS $$
  SELECT guard_compact(t) ~ ('(退地|退田|以地换户|以地換戶|腾退|騰退|'
    || '退出(承包|土地|宅基|耕地|旧宅|舊宅|老宅)|退還(承包|土地|宅基)|退还(承包|土地|宅基)|'
    || '交回(承包|土地|宅基|耕地)|交还(承包|土地|宅基)|交還(承包|土地|宅基)|'
    || '放弃(承包|土地|宅基|分红|收益|成员|股)|放棄(承包|土地|宅基|分紅|收益|成員|股)|'
    || '不再参与.{0,4}分红|不再參與.{0,4}分紅|丧失成员资格|喪失成員資格|'
    || '不再是.{0,4}成员|不再是.{0,4}成員|giveup|surrender|relinquish|handback)')
$$;

-- settling in town (never a ground for anything)
CREATE OR REPLACE FUNCTION guard_urban_text(t text) RETURNS boolean LANGUAGE sql
IMMUTABLE AS $$
  SELECT guard_compact(t) ~ ('(进城落户|進城落戶|落户城镇|落戶城鎮|城镇户口|城鎮戶口|农转非|農轉非|'
    || '以地换户|以地換戶|settl(e|ed|ing|es)intown)')
$$;

-- … or moving the hukou (never a ground to end a membership or a right: 农村集体经济组织法
-- art 17 — except that gaining another collective's membership may come with it)
CREATE OR REPLACE FUNCTION guard_settlement_text(t text) RETURNS boolean LANGUAGE sql
IMMUTABLE AS $$
  SELECT guard_urban_text(t) OR guard_compact(t) ~ ('(户口迁出|戶口遷出|迁出户口|遷出戶口|'
    || '户籍迁出|戶籍遷出|户口迁移|戶口遷移|hukoumove)')
$$;

ALTER TABLE settlement_application ADD COLUMN refusal_reasons varchar(40)[];
ALTER TABLE settlement_application ADD CONSTRAINT ck_settlement_application_refusal_reasons_closed_list
  CHECK (refusal_reasons IS NULL OR refusal_reasons <@ ARRAY[%(reasons)s]::varchar(40)[]);
ALTER TABLE settlement_application ADD CONSTRAINT ck_settlement_application_refused_with_reasons
  CHECK (status <> 'rejected' OR coalesce(cardinality(refusal_reasons), 0) > 0) NOT VALID;
ALTER TABLE settlement_application ADD CONSTRAINT ck_settlement_application_text_guard
  CHECK (NOT guard_surrender_text(coalesce(decision_note, '') || '|' || residence_address
         || '|' || destination_address || '|' || coalesce(employer_name, '') || '|'
         || coalesce(police_station, ''))) NOT VALID;
ALTER TABLE settlement_document ADD CONSTRAINT ck_settlement_document_filename_guard
  CHECK (NOT guard_surrender_text(filename)) NOT VALID;
ALTER TABLE residence_permit ADD CONSTRAINT ck_residence_permit_address_guard
  CHECK (NOT guard_surrender_text(address)) NOT VALID;
ALTER TABLE membership ADD CONSTRAINT ck_membership_end_note_guard
  CHECK (end_note IS NULL OR (NOT guard_urban_text(end_note) AND
         (end_ground = 'other_membership' OR NOT guard_settlement_text(end_note)))) NOT VALID;

ALTER TABLE certificate ADD COLUMN end_ground varchar(20);
ALTER TABLE certificate ADD COLUMN end_reference varchar(100);
ALTER TABLE certificate ADD CONSTRAINT ck_certificate_end_ground
  CHECK ((status = 'valid' AND end_ground IS NULL)
         OR (status = 'superseded' AND end_ground = 'new_edition')
         OR (status = 'cancelled' AND (end_ground = 'right_ended' OR (end_ground =
             'error_corrected' AND length(trim(coalesce(end_reference, ''))) > 0)))) NOT VALID;
ALTER TABLE certificate ADD CONSTRAINT ck_certificate_end_reason_guard
  CHECK (end_reason IS NULL OR NOT guard_settlement_text(end_reason || '|'
         || coalesce(end_reference, ''))) NOT VALID;

CREATE OR REPLACE FUNCTION certificate_end_ground() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.status = 'cancelled' AND OLD.status = 'valid' AND NEW.end_ground = 'right_ended'
     AND EXISTS (SELECT 1 FROM land_right WHERE uid = NEW.right_uid AND status = 'current'
                 AND end_lifespan IS NULL) THEN
    RAISE EXCEPTION 'certificate.right_still_current: certificate % is cancelled as right_ended only once its right has ended on a lawful ground (农村土地承包法 art 27)', NEW.number
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER certificate_end_ground BEFORE UPDATE ON certificate
  FOR EACH ROW EXECUTE FUNCTION certificate_end_ground();

CREATE OR REPLACE FUNCTION certificate_edition_chain() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE last certificate%ROWTYPE;
BEGIN
  SELECT * INTO last FROM certificate WHERE kind = NEW.kind AND number = NEW.number
    ORDER BY edition DESC LIMIT 1;
  IF NOT FOUND THEN
    IF NEW.edition <> 1 OR NEW.replaces_id IS NOT NULL THEN
      RAISE EXCEPTION 'certificate.edition: the first certificate of number % is edition 1', NEW.number
        USING ERRCODE = 'check_violation';
    END IF;
  ELSIF NEW.edition <> last.edition + 1 OR NEW.replaces_id IS DISTINCT FROM last.id THEN
    RAISE EXCEPTION 'certificate.edition: certificate % continues with edition %, replacing edition %', NEW.number, last.edition + 1, last.edition
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER certificate_edition_chain BEFORE INSERT ON certificate
  FOR EACH ROW EXECUTE FUNCTION certificate_edition_chain();

-- a certificate superseded "by a new edition" has one by the end of the transaction: no
-- household is left without its valid certificate by a supersession in name only
CREATE OR REPLACE FUNCTION certificate_superseded_has_successor() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.status = 'superseded' AND NOT EXISTS (SELECT 1 FROM certificate
                                               WHERE replaces_id = NEW.id) THEN
    RAISE EXCEPTION 'certificate.no_successor: certificate % (edition %) is superseded but no new edition replaces it', NEW.number, NEW.edition
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER certificate_superseded_has_successor AFTER UPDATE ON certificate
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
  WHEN (NEW.status = 'superseded' AND OLD.status = 'valid')
  EXECUTE FUNCTION certificate_superseded_has_successor();

ALTER TABLE app_user DROP CONSTRAINT ck_app_user_role;
ALTER TABLE app_user ALTER COLUMN role TYPE varchar(30);
ALTER TABLE app_user ADD CONSTRAINT ck_app_user_role CHECK (role IN ('farmer',
  'collective_officer','bureau_staff','exchange_operator','hukou_officer','auditor',
  'compliance_supervisor','admin'));

CREATE TABLE coercion_report (
  id serial PRIMARY KEY,
  received_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  channel varchar(12) NOT NULL,
  context varchar(80),
  division_code varchar(18),
  what_happened text NOT NULL,
  who_asked varchar(200),
  contact varchar(100),
  reporter_user_id integer REFERENCES app_user(id),
  status varchar(14) NOT NULL DEFAULT 'received',
  resolution text,
  handled_by varchar(50),
  handled_at timestamptz,
  CONSTRAINT ck_coercion_report_channel CHECK (channel IN ('public','notice_page',
    'verify_page','farmer_page')),
  CONSTRAINT ck_coercion_report_status CHECK (status IN ('received','investigating',
    'substantiated','unfounded')),
  CONSTRAINT ck_coercion_report_what_happened CHECK (length(trim(what_happened)) > 0),
  CONSTRAINT ck_coercion_report_resolved_with_note CHECK (status NOT IN ('substantiated',
    'unfounded') OR (length(trim(coalesce(resolution, ''))) > 0 AND handled_by IS NOT NULL))
);
CREATE INDEX ix_coercion_report_division_code ON coercion_report (division_code);
CREATE TABLE coercion_report_step (
  id serial PRIMARY KEY,
  report_id integer NOT NULL REFERENCES coercion_report(id),
  at timestamptz NOT NULL DEFAULT clock_timestamp(),
  by varchar(50) NOT NULL,
  from_status varchar(14) NOT NULL,
  to_status varchar(14) NOT NULL,
  note text NOT NULL,
  CONSTRAINT ck_coercion_report_step_note CHECK (length(trim(note)) > 0)
);
CREATE INDEX ix_coercion_report_step_report_id ON coercion_report_step (report_id);

CREATE OR REPLACE FUNCTION coercion_report_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    RAISE EXCEPTION 'report.history: a report of coercion is never deleted (%)', OLD.id
      USING ERRCODE = 'check_violation';
  END IF;
  IF (NEW.id, NEW.received_at, NEW.channel, NEW.context, NEW.division_code, NEW.what_happened,
      NEW.who_asked, NEW.contact, NEW.reporter_user_id) IS DISTINCT FROM
     (OLD.id, OLD.received_at, OLD.channel, OLD.context, OLD.division_code, OLD.what_happened,
      OLD.who_asked, OLD.contact, OLD.reporter_user_id) THEN
    RAISE EXCEPTION 'report.history: what was reported is never changed (report %)', OLD.id
      USING ERRCODE = 'check_violation';
  END IF;
  IF NEW.status IS DISTINCT FROM OLD.status THEN
    IF NOT ((OLD.status = 'received' AND NEW.status IN ('investigating','substantiated',
             'unfounded')) OR (OLD.status = 'investigating' AND NEW.status IN
             ('substantiated','unfounded'))) THEN
      RAISE EXCEPTION 'report.step: report % cannot go from % to %', OLD.id, OLD.status, NEW.status
        USING ERRCODE = 'check_violation';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM coercion_report_step WHERE report_id = OLD.id
                   AND from_status = OLD.status AND to_status = NEW.status) THEN
      RAISE EXCEPTION 'report.step: the change of report % from % to % needs its recorded step', OLD.id, OLD.status, NEW.status
        USING ERRCODE = 'check_violation';
    END IF;
  ELSIF (NEW.resolution, NEW.handled_by, NEW.handled_at) IS DISTINCT FROM
        (OLD.resolution, OLD.handled_by, OLD.handled_at) THEN
    RAISE EXCEPTION 'report.history: a resolution is written with its step only (report %)', OLD.id
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER coercion_report_guard BEFORE UPDATE OR DELETE ON coercion_report
  FOR EACH ROW EXECUTE FUNCTION coercion_report_guard();

CREATE OR REPLACE FUNCTION coercion_report_step_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP <> 'INSERT' THEN
    RAISE EXCEPTION 'report.history: the steps of a report are never changed or deleted'
      USING ERRCODE = 'check_violation';
  END IF;
  IF NEW.from_status IS DISTINCT FROM (SELECT status FROM coercion_report
                                       WHERE id = NEW.report_id) THEN
    RAISE EXCEPTION 'report.step: report % is not %', NEW.report_id, NEW.from_status
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER coercion_report_step_guard BEFORE INSERT OR UPDATE OR DELETE
  ON coercion_report_step FOR EACH ROW EXECUTE FUNCTION coercion_report_step_guard();

CREATE OR REPLACE FUNCTION coercion_report_no_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'report.history: reports of coercion are never truncated'
    USING ERRCODE = 'check_violation';
END $$;
CREATE TRIGGER coercion_report_no_truncate BEFORE TRUNCATE ON coercion_report
  FOR EACH STATEMENT EXECUTE FUNCTION coercion_report_no_truncate();
CREATE TRIGGER coercion_report_step_no_truncate BEFORE TRUNCATE ON coercion_report_step
  FOR EACH STATEMENT EXECUTE FUNCTION coercion_report_no_truncate();
"""

DOWN = r"""
DROP TABLE IF EXISTS coercion_report_step;
DROP TABLE IF EXISTS coercion_report;
DROP FUNCTION IF EXISTS coercion_report_guard, coercion_report_step_guard,
  coercion_report_no_truncate;
UPDATE app_user SET role = 'auditor', active = false WHERE role = 'compliance_supervisor';
ALTER TABLE app_user DROP CONSTRAINT ck_app_user_role;
ALTER TABLE app_user ADD CONSTRAINT ck_app_user_role CHECK (role IN ('farmer',
  'collective_officer','bureau_staff','exchange_operator','hukou_officer','auditor','admin'));
ALTER TABLE app_user ALTER COLUMN role TYPE varchar(20);
DROP TRIGGER IF EXISTS certificate_superseded_has_successor ON certificate;
DROP FUNCTION IF EXISTS certificate_superseded_has_successor;
DROP TRIGGER IF EXISTS certificate_edition_chain ON certificate;
DROP TRIGGER IF EXISTS certificate_end_ground ON certificate;
DROP FUNCTION IF EXISTS certificate_edition_chain, certificate_end_ground;
ALTER TABLE certificate DROP CONSTRAINT IF EXISTS ck_certificate_end_reason_guard;
ALTER TABLE certificate DROP CONSTRAINT IF EXISTS ck_certificate_end_ground;
ALTER TABLE certificate DROP COLUMN IF EXISTS end_reference;
ALTER TABLE certificate DROP COLUMN IF EXISTS end_ground;
ALTER TABLE membership DROP CONSTRAINT IF EXISTS ck_membership_end_note_guard;
ALTER TABLE residence_permit DROP CONSTRAINT IF EXISTS ck_residence_permit_address_guard;
ALTER TABLE settlement_document DROP CONSTRAINT IF EXISTS ck_settlement_document_filename_guard;
ALTER TABLE settlement_application DROP CONSTRAINT IF EXISTS ck_settlement_application_text_guard;
ALTER TABLE settlement_application DROP CONSTRAINT IF EXISTS ck_settlement_application_refused_with_reasons;
ALTER TABLE settlement_application DROP CONSTRAINT IF EXISTS ck_settlement_application_refusal_reasons_closed_list;
ALTER TABLE settlement_application DROP COLUMN IF EXISTS refusal_reasons;
DROP FUNCTION IF EXISTS guard_surrender_text, guard_settlement_text, guard_urban_text,
  guard_compact;
"""


def upgrade():
    op.execute(UP.replace("%(reasons)s", ",".join(f"'{r}'" for r in REFUSAL_REASONS)))


def downgrade():
    op.execute(DOWN)
