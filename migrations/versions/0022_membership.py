"""membership confirmation, shares and income distribution (issue 15)

- membership_charter_rule: a collective's charter settings for membership and shares (vote
  threshold, default two thirds of all members; population and labour-age shares; collective
  share in basis points; static management 生不增、死不减 or periodic adjustment; notice days);
- membership_application: applications by basis with the law's criteria and special-case flags;
- member_assembly, member_assembly_attendance, member_assembly_resolution: the members' assembly
  (成员大会); a resolution that admits or rejects below the charter's threshold of ALL members is
  refused by trigger; resolutions are append-only;
- roll_notice / roll_objection: the proposed roll's public notice (公示), objections resolved
  with reasons (upheld/dismissed), filing with the township only after the notice ran and every
  objection was resolved (trigger);
- share_quantification / share_holding: 股份量化; a holding passes on death only to an heir of
  the same household (trigger);
- member_bank_account: where a member's distribution is paid;
- distribution / distribution_payout: 收益分配 in integer fen.  A rule that excludes or reduces by
  hukou place, residence or settlement is refused (trigger, 乡村振兴促进法 art 55); payouts are
  append-only (UPDATE/DELETE revoked from the app role and refused by trigger); a distribution is
  marked paid only when every current share holder of its quantification has a payout, the
  payouts sum exactly to the amount and nobody is a fen or more from their exact share (trigger).

Revision ID: 0022_membership
Revises: 0020_market_attacks
"""
import os

from alembic import op

revision = "0022_membership"
down_revision = "0023_ops"
branch_labels = None
depends_on = None

APP_ROLE = os.environ.get("SANQUAN_APP_ROLE", "sanquan_app")

TABLES = r"""
CREATE TABLE membership_charter_rule (
  collective_id integer PRIMARY KEY REFERENCES collective(id),
  vote_num integer NOT NULL DEFAULT 2,
  vote_den integer NOT NULL DEFAULT 3,
  population_centi integer NOT NULL DEFAULT 100,
  labour_centi_per_year integer NOT NULL DEFAULT 0,
  labour_age_from integer NOT NULL DEFAULT 16,
  labour_age_to integer NOT NULL DEFAULT 60,
  collective_share_bp integer NOT NULL DEFAULT 0,
  management varchar(10) NOT NULL DEFAULT 'static',
  adjust_every_years integer,
  notice_days integer NOT NULL DEFAULT 7,
  updated_by varchar(50) NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT ck_membership_charter_rule_threshold
    CHECK (vote_den > 0 AND vote_num > 0 AND vote_num * 2 > vote_den AND vote_num <= vote_den),
  CONSTRAINT ck_membership_charter_rule_shares
    CHECK (population_centi >= 0 AND labour_centi_per_year >= 0
           AND population_centi + labour_centi_per_year > 0
           AND labour_age_from >= 0 AND labour_age_to > labour_age_from),
  CONSTRAINT ck_membership_charter_rule_collective_share
    CHECK (collective_share_bp >= 0 AND collective_share_bp < 10000),
  CONSTRAINT ck_membership_charter_rule_management
    CHECK ((management = 'static' AND adjust_every_years IS NULL)
        OR (management = 'periodic' AND adjust_every_years > 0)),
  CONSTRAINT ck_membership_charter_rule_notice CHECK (notice_days >= 7)
);

CREATE TABLE membership_application (
  id serial PRIMARY KEY,
  collective_id integer NOT NULL REFERENCES collective(id),
  person_id integer NOT NULL REFERENCES person(id),
  basis varchar(20) NOT NULL,
  criteria jsonb NOT NULL,
  flags varchar(30)[] NOT NULL DEFAULT '{}',
  statement text,
  status varchar(20) NOT NULL DEFAULT 'pending',
  submitted_by varchar(50) NOT NULL,
  submitted_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT ck_membership_application_basis
    CHECK (basis IN ('birth','marriage','adoption','resettlement','return','other')),
  CONSTRAINT ck_membership_application_status
    CHECK (status IN ('pending','admitted','rejected','objection_upheld','filed'))
);
CREATE INDEX ix_membership_application_collective_id ON membership_application (collective_id);
CREATE INDEX ix_membership_application_person_id ON membership_application (person_id);

CREATE TABLE member_assembly (
  id serial PRIMARY KEY,
  collective_id integer NOT NULL REFERENCES collective(id),
  meeting_date date NOT NULL,
  members_total integer NOT NULL,
  vote_num integer NOT NULL,
  vote_den integer NOT NULL,
  created_by varchar(50) NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT ck_member_assembly_counts
    CHECK (members_total > 0 AND vote_den > 0 AND vote_num * 2 > vote_den AND vote_num <= vote_den)
);
CREATE INDEX ix_member_assembly_collective_id ON member_assembly (collective_id);

CREATE TABLE member_assembly_attendance (
  assembly_id integer NOT NULL REFERENCES member_assembly(id),
  person_id integer NOT NULL REFERENCES person(id),
  PRIMARY KEY (assembly_id, person_id)
);

CREATE TABLE member_assembly_resolution (
  id serial PRIMARY KEY,
  assembly_id integer NOT NULL REFERENCES member_assembly(id),
  application_id integer NOT NULL REFERENCES membership_application(id),
  yes integer NOT NULL,
  no integer NOT NULL,
  abstain integer NOT NULL,
  decision varchar(10) NOT NULL,
  recorded_by varchar(50) NOT NULL,
  recorded_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT ck_member_assembly_resolution_counts CHECK (yes >= 0 AND no >= 0 AND abstain >= 0),
  CONSTRAINT ck_member_assembly_resolution_decision CHECK (decision IN ('admit','reject'))
);
CREATE INDEX ix_member_assembly_resolution_assembly_id ON member_assembly_resolution (assembly_id);

CREATE TABLE roll_notice (
  id serial PRIMARY KEY,
  collective_id integer NOT NULL REFERENCES collective(id),
  assembly_id integer NOT NULL REFERENCES member_assembly(id),
  posted_on date NOT NULL,
  ends_on date NOT NULL,
  status varchar(10) NOT NULL DEFAULT 'posted',
  filed_on date,
  filed_by varchar(50),
  roll_size integer,
  pdf bytea,
  pdf_sha256 varchar(64),
  CONSTRAINT ck_roll_notice_period CHECK (ends_on >= posted_on + 7),
  CONSTRAINT ck_roll_notice_status CHECK (
    (status = 'posted' AND filed_on IS NULL AND pdf IS NULL)
    OR (status = 'filed' AND filed_on >= ends_on AND pdf IS NOT NULL AND filed_by IS NOT NULL
        AND roll_size IS NOT NULL))
);
CREATE INDEX ix_roll_notice_collective_id ON roll_notice (collective_id);

CREATE TABLE roll_objection (
  id serial PRIMARY KEY,
  notice_id integer NOT NULL REFERENCES roll_notice(id),
  application_id integer REFERENCES membership_application(id),
  objector varchar(50) NOT NULL,
  text text NOT NULL,
  lodged_on date NOT NULL,
  resolution varchar(10),
  reasons text,
  resolved_by varchar(50),
  resolved_on date,
  CONSTRAINT ck_roll_objection_text CHECK (length(trim(text)) > 0),
  CONSTRAINT ck_roll_objection_resolved CHECK (
    (resolution IS NULL AND reasons IS NULL AND resolved_on IS NULL)
    OR (resolution IN ('upheld','dismissed') AND length(trim(reasons)) > 0
        AND resolved_on IS NOT NULL AND resolved_by IS NOT NULL))
);
CREATE INDEX ix_roll_objection_notice_id ON roll_objection (notice_id);

CREATE TABLE share_quantification (
  id serial PRIMARY KEY,
  collective_id integer NOT NULL REFERENCES collective(id),
  base_date date NOT NULL,
  asset_value_fen bigint NOT NULL,
  collective_share_bp integer NOT NULL,
  member_centi bigint NOT NULL,
  collective_centi bigint NOT NULL,
  management varchar(10) NOT NULL,
  created_by varchar(50) NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT ck_share_quantification_value CHECK (asset_value_fen >= 0),
  CONSTRAINT ck_share_quantification_shares
    CHECK (member_centi > 0 AND collective_centi >= 0
           AND collective_share_bp >= 0 AND collective_share_bp < 10000),
  CONSTRAINT ck_share_quantification_management CHECK (management IN ('static','periodic'))
);
CREATE INDEX ix_share_quantification_collective_id ON share_quantification (collective_id);

CREATE TABLE share_holding (
  id serial PRIMARY KEY,
  quantification_id integer NOT NULL REFERENCES share_quantification(id),
  person_id integer NOT NULL REFERENCES person(id),
  household_id integer REFERENCES household(id),
  population_centi bigint NOT NULL,
  labour_centi bigint NOT NULL,
  shares_centi bigint NOT NULL,
  source varchar(10) NOT NULL,
  inherited_from_id integer REFERENCES share_holding(id),
  ended_on date,
  end_ground varchar(20),
  CONSTRAINT ck_share_holding_sum
    CHECK (population_centi >= 0 AND labour_centi >= 0
           AND shares_centi = population_centi + labour_centi AND shares_centi > 0),
  CONSTRAINT ck_share_holding_source CHECK (
    (source = 'quantified' AND inherited_from_id IS NULL)
    OR (source = 'inherited' AND inherited_from_id IS NOT NULL)),
  CONSTRAINT ck_share_holding_end CHECK (
    (ended_on IS NULL AND end_ground IS NULL)
    OR (ended_on IS NOT NULL AND end_ground IN ('inherited','adjusted')))
);
CREATE INDEX ix_share_holding_quantification_id ON share_holding (quantification_id);
CREATE INDEX ix_share_holding_person_id ON share_holding (person_id);

CREATE TABLE member_bank_account (
  person_id integer PRIMARY KEY REFERENCES person(id),
  bank_name varchar(60) NOT NULL,
  account_no varchar(34) NOT NULL,
  recorded_by varchar(50) NOT NULL,
  recorded_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT ck_member_bank_account_no CHECK (account_no ~ '^[0-9]{8,34}$')
);

CREATE TABLE distribution (
  id serial PRIMARY KEY,
  collective_id integer NOT NULL REFERENCES collective(id),
  quantification_id integer NOT NULL REFERENCES share_quantification(id),
  amount_fen bigint NOT NULL,
  paid_on date NOT NULL,
  rule jsonb NOT NULL DEFAULT '{}',
  rule_note text,
  total_centi bigint NOT NULL,
  status varchar(10) NOT NULL DEFAULT 'computed',
  created_by varchar(50) NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT ck_distribution_amount CHECK (amount_fen > 0),
  CONSTRAINT ck_distribution_total CHECK (total_centi > 0),
  CONSTRAINT ck_distribution_status CHECK (status IN ('computed','paid')),
  CONSTRAINT ck_distribution_per_share CHECK (rule->>'per' IS NULL OR rule->>'per' = 'share')
);
CREATE INDEX ix_distribution_collective_id ON distribution (collective_id);

CREATE TABLE distribution_payout (
  id bigserial PRIMARY KEY,
  distribution_id integer NOT NULL REFERENCES distribution(id),
  person_id integer REFERENCES person(id),
  household_id integer REFERENCES household(id),
  shares_centi bigint NOT NULL,
  amount_fen bigint NOT NULL,
  CONSTRAINT ck_distribution_payout_amounts CHECK (shares_centi > 0 AND amount_fen >= 0)
);
CREATE INDEX ix_distribution_payout_distribution_id ON distribution_payout (distribution_id);
CREATE INDEX ix_distribution_payout_person_id ON distribution_payout (person_id);
"""

FUNCTIONS = r"""
-- ---------------------------------------------------------------- the assembly's threshold
CREATE OR REPLACE FUNCTION member_assembly_resolution_threshold() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE a member_assembly; present integer; counted integer;
BEGIN
  SELECT * INTO a FROM member_assembly WHERE id = NEW.assembly_id;
  SELECT count(*) INTO present FROM member_assembly_attendance WHERE assembly_id = NEW.assembly_id;
  IF NEW.yes + NEW.no + NEW.abstain > present THEN
    RAISE EXCEPTION 'membership.assembly.votes: % votes counted but % members attended',
      NEW.yes + NEW.no + NEW.abstain, present USING ERRCODE = 'check_violation';
  END IF;
  counted := CASE NEW.decision WHEN 'admit' THEN NEW.yes ELSE NEW.no END;
  IF counted::bigint * a.vote_den < a.vote_num::bigint * a.members_total THEN
    RAISE EXCEPTION 'membership.assembly.threshold: % of % members is below the charter''s %/% of all members (农村集体经济组织法 art 26)',
      counted, a.members_total, a.vote_num, a.vote_den USING ERRCODE = 'check_violation';
  END IF;
  IF EXISTS (SELECT 1 FROM membership_application p WHERE p.id = NEW.application_id
             AND p.collective_id <> a.collective_id) THEN
    RAISE EXCEPTION 'membership.assembly.collective: the application is to another collective'
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER member_assembly_resolution_threshold BEFORE INSERT ON member_assembly_resolution
  FOR EACH ROW EXECUTE FUNCTION member_assembly_resolution_threshold();

-- append-only records (whatever the grants)
CREATE OR REPLACE FUNCTION membership_append_only() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
  RAISE EXCEPTION 'membership.append_only: % rows are history and are never changed or deleted',
    TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER member_assembly_resolution_append_only BEFORE UPDATE OR DELETE
  ON member_assembly_resolution FOR EACH ROW EXECUTE FUNCTION membership_append_only();
CREATE TRIGGER distribution_payout_append_only BEFORE UPDATE OR DELETE
  ON distribution_payout FOR EACH ROW EXECUTE FUNCTION membership_append_only();
CREATE TRIGGER member_assembly_attendance_append_only BEFORE UPDATE OR DELETE
  ON member_assembly_attendance FOR EACH ROW EXECUTE FUNCTION membership_append_only();

-- ---------------------------------------------------------------- notice, objections, filing
CREATE OR REPLACE FUNCTION roll_objection_once() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
  IF OLD.resolution IS NOT NULL OR NEW.text IS DISTINCT FROM OLD.text
     OR NEW.notice_id <> OLD.notice_id OR NEW.lodged_on <> OLD.lodged_on THEN
    RAISE EXCEPTION 'membership.objection.resolved: an objection is resolved once, and what was objected never changes'
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER roll_objection_once BEFORE UPDATE ON roll_objection
  FOR EACH ROW EXECUTE FUNCTION roll_objection_once();

CREATE OR REPLACE FUNCTION roll_notice_filing() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
  IF OLD.status = 'filed' THEN
    RAISE EXCEPTION 'membership.roll.filed: a filed roll is never changed'
      USING ERRCODE = 'check_violation';
  END IF;
  IF NEW.status = 'filed' AND EXISTS (SELECT 1 FROM roll_objection
      WHERE notice_id = NEW.id AND resolution IS NULL) THEN
    RAISE EXCEPTION 'membership.roll.objections_open: every objection is resolved before the roll is filed'
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER roll_notice_filing BEFORE UPDATE ON roll_notice
  FOR EACH ROW EXECUTE FUNCTION roll_notice_filing();

-- ---------------------------------------------------------------- shares: inheritance
CREATE OR REPLACE FUNCTION share_holding_inheritance() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE d share_holding;
BEGIN
  IF NEW.source = 'inherited' THEN
    SELECT * INTO d FROM share_holding WHERE id = NEW.inherited_from_id;
    IF d.quantification_id <> NEW.quantification_id OR d.household_id IS NULL
       OR d.household_id IS DISTINCT FROM NEW.household_id
       OR NOT EXISTS (SELECT 1 FROM household_member hm WHERE hm.household_id = d.household_id
                      AND hm.person_id = NEW.person_id) THEN
      RAISE EXCEPTION 'membership.shares.inheritance: shares pass on death within the household only'
        USING ERRCODE = 'check_violation';
    END IF;
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER share_holding_inheritance BEFORE INSERT ON share_holding
  FOR EACH ROW EXECUTE FUNCTION share_holding_inheritance();

-- ---------------------------------------------------------------- distribution (art 55)
CREATE OR REPLACE FUNCTION distribution_residence_text(t text) RETURNS boolean
LANGUAGE sql IMMUTABLE SET search_path = public, pg_temp AS $$
  SELECT guard_compact(t) ~ ('(户口|戶口|户籍|戶籍|落户|落戶|进城|進城|城镇|城鎮|农转非|農轉非|'
    || '非农|非農|迁出|遷出|外迁|外遷|居住|常住|定居|在外|外出|外地|离村|離村|不在本村|城里|城裡|'
    || '城市|市民|hukou|settl|resid|town|city|domicil|urban)')
$$;

CREATE OR REPLACE FUNCTION distribution_rule_lawful() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE k text;
BEGIN
  FOR k IN SELECT jsonb_object_keys(NEW.rule) LOOP
    IF k <> 'per' AND NEW.rule->k IS NOT NULL AND NEW.rule->k NOT IN ('null'::jsonb, '[]'::jsonb,
        '{}'::jsonb, 'false'::jsonb, '""'::jsonb) THEN
      RAISE EXCEPTION 'distribution.rule.art55: a distribution pays every share alike; "%" would exclude or reduce members — hukou place, residence or settling in town is never a ground to exclude or reduce a member''s distribution (乡村振兴促进法 art 55)',
        k USING ERRCODE = 'check_violation';
    END IF;
  END LOOP;
  IF distribution_residence_text(NEW.rule::text) OR distribution_residence_text(NEW.rule_note)
     OR guard_settlement_text(NEW.rule_note) OR guard_surrender_text(NEW.rule_note) THEN
    RAISE EXCEPTION 'distribution.rule.art55: the rule ties the distribution to hukou place, residence or settling in town (乡村振兴促进法 art 55)'
      USING ERRCODE = 'check_violation';
  END IF;
  IF TG_OP = 'UPDATE' THEN
    IF OLD.status = 'paid' THEN
      RAISE EXCEPTION 'distribution.paid: a paid distribution is history' USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.amount_fen <> OLD.amount_fen OR NEW.quantification_id <> OLD.quantification_id
       OR NEW.total_centi <> OLD.total_centi OR NEW.rule <> OLD.rule
       OR NEW.rule_note IS DISTINCT FROM OLD.rule_note THEN
      RAISE EXCEPTION 'distribution.frozen: amount, shares and rule of a run never change'
        USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.status = 'paid' THEN
      PERFORM distribution_check_complete(NEW);
    END IF;
  END IF;
  RETURN NEW;
END $$;

-- every current share holder paid per share, the sum exact, nobody a fen off their exact share
CREATE OR REPLACE FUNCTION distribution_check_complete(d distribution) RETURNS void
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE s_amount numeric; missing integer; off integer; s_shares numeric; q share_quantification;
BEGIN
  SELECT * INTO q FROM share_quantification WHERE id = d.quantification_id;
  SELECT coalesce(sum(amount_fen), 0), coalesce(sum(shares_centi), 0) INTO s_amount, s_shares
    FROM distribution_payout WHERE distribution_id = d.id;
  SELECT count(*) INTO missing FROM (
    SELECT person_id, sum(shares_centi) AS s FROM share_holding
     WHERE quantification_id = d.quantification_id AND ended_on IS NULL GROUP BY person_id) h
    LEFT JOIN (SELECT person_id, sum(shares_centi) AS s FROM distribution_payout
                WHERE distribution_id = d.id AND person_id IS NOT NULL GROUP BY person_id) p
      ON p.person_id = h.person_id
   WHERE p.s IS DISTINCT FROM h.s;
  IF missing > 0 THEN
    RAISE EXCEPTION 'distribution.rule.art55: % share holder(s) without their full payout — a member is never excluded or reduced for hukou place, residence or settling in town (乡村振兴促进法 art 55)',
      missing USING ERRCODE = 'check_violation';
  END IF;
  IF s_amount <> d.amount_fen OR s_shares <> d.total_centi
     OR d.total_centi <> (SELECT coalesce(sum(shares_centi), 0) FROM share_holding
       WHERE quantification_id = d.quantification_id AND ended_on IS NULL) + q.collective_centi THEN
    RAISE EXCEPTION 'distribution.sum: payouts % fen over % shares, run % fen over % shares',
      s_amount, s_shares, d.amount_fen, d.total_centi USING ERRCODE = 'check_violation';
  END IF;
  SELECT count(*) INTO off FROM distribution_payout
   WHERE distribution_id = d.id
     AND abs(amount_fen::numeric * d.total_centi - shares_centi::numeric * d.amount_fen)
         >= d.total_centi;
  IF off > 0 THEN
    RAISE EXCEPTION 'distribution.rounding: % payout(s) a fen or more from their exact share', off
      USING ERRCODE = 'check_violation';
  END IF;
END $$;

CREATE TRIGGER distribution_rule_lawful BEFORE INSERT OR UPDATE ON distribution
  FOR EACH ROW EXECUTE FUNCTION distribution_rule_lawful();
CREATE TRIGGER distribution_no_delete BEFORE DELETE ON distribution
  FOR EACH ROW EXECUTE FUNCTION membership_append_only();

CREATE OR REPLACE FUNCTION distribution_payout_open() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
  IF (SELECT status FROM distribution WHERE id = NEW.distribution_id) <> 'computed' THEN
    RAISE EXCEPTION 'distribution.paid: no payout is added to a paid distribution'
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER distribution_payout_open BEFORE INSERT ON distribution_payout
  FOR EACH ROW EXECUTE FUNCTION distribution_payout_open();

REVOKE UPDATE, DELETE ON distribution_payout FROM {app};
REVOKE UPDATE, DELETE ON member_assembly_resolution FROM {app};
REVOKE UPDATE, DELETE ON member_assembly_attendance FROM {app};
REVOKE DELETE ON distribution FROM {app};
REVOKE DELETE ON roll_notice FROM {app};
REVOKE DELETE ON roll_objection FROM {app};
"""

DROP = """
DROP TABLE IF EXISTS distribution_payout, distribution, member_bank_account, share_holding,
  share_quantification, roll_objection, roll_notice, member_assembly_resolution,
  member_assembly_attendance, member_assembly, membership_application,
  membership_charter_rule CASCADE;
DROP FUNCTION IF EXISTS member_assembly_resolution_threshold(), membership_append_only(),
  roll_objection_once(), roll_notice_filing(), share_holding_inheritance(),
  distribution_residence_text(text), distribution_rule_lawful(), distribution_payout_open();
"""


def upgrade():
    op.execute(TABLES)
    op.execute(FUNCTIONS.replace("{app}", APP_ROLE))


def downgrade():
    op.execute("DROP FUNCTION IF EXISTS distribution_check_complete(distribution) CASCADE")
    op.execute(DROP)
