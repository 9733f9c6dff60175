"""Adversarial review of membership (issue 15): routes that took income from a member who settled
in town (or studies, serves, works away, is in prison) and that the database let through on the
app's own connection.

- the rule note: paraphrases (在校大学生不参与分红, 外嫁女不分, 仅限本地成员, 户1口2迁3出…, full-width
  letters) passed; now any wording of an exclusion or reduction, whoever it names, is refused
  (distribution_excludes_text, NFKC, digits between characters dropped);
- a distribution could be INSERTed already 'paid' (never checked), or on another collective's
  quantification;
- share_holding could be UPDATEd (population share cut, ended as 'adjusted' or 'inherited' while
  the member lived, moved to another person) or DELETEd: now fixed (trigger, DELETE revoked);
  'adjusted' needs a later quantification, 'inherited' the holder's death;
- a new quantification that leaves the settled member out could be inserted and paid on: static
  management and the interval are enforced in the database, and a run is paid only when every
  member on the roll at the base date (still a member on the payment date) holds current shares,
  population shares are alike, and payouts go only to holders and the collective share;
- the assembly: members_total written as 1 (any vote passes), a non-member's attendance, a
  second resolution on a decided application (also concurrently: the application row is locked)
  are refused; the API took filed_on/posted_on/lodged_on from the client (filing on the
  notice's first day) — now the app clock decides;
- a charter with population share 0 left children/students with no share (and crashed the
  quantification on a zero holding): every member holds a population share.

Revision ID: 0027_member_attacks
Revises: 0022_membership
"""
import os

from alembic import op

revision = "0027_member_attacks"
down_revision = "0026_scale"
branch_labels = None
depends_on = None

APP_ROLE = os.environ.get("SANQUAN_APP_ROLE", "sanquan_app")

EXCLUDES = r"""-- the words of an exclusion or reduction, whoever it names (a run pays every share alike);
-- NFKC folds full-width letters, digits between characters are dropped
CREATE OR REPLACE FUNCTION distribution_excludes_text(t text) RETURNS boolean
LANGUAGE sql IMMUTABLE SET search_path = public, pg_temp AS $$
  SELECT x ~ ('(不分|不參與|不参与|不参加|不參加|不享受|不享有|不予|不算|不计|不計|不发|不發|不给|不給|'
    || '减半|減半|减少|減少|减发|減發|少分|少发|少發|扣除|扣减|扣減|扣发|扣發|取消|除外|排除|剔除|'
    || '停发|停發|暂停|暫停|只分|只给|只給|只发|只發|只限|仅限|僅限|仅分|僅分|仅给|僅給|仅发|僅發|'
    || '才分|才能分|才给|才給|才享|限于|限於|打折|折半|一半|半额|半額|'
    || '学生|學生|读书|讀書|上学|上學|在校|服刑|监狱|監獄|坐牢|劳改|勞改|参军|參軍|服役|当兵|當兵|'
    || '军人|軍人|现役|現役|外嫁|出嫁|嫁出|外出|打工|务工|務工|在外|外地|本地|在村|非本村|'
    || '商品粮|商品糧|买房|買房|购房|購房|县城|縣城|留守|'
    || 'exclud|except|only|half|reduc|withh|deduct|local|student|prison|soldier|militar|'
    || 'migrant|away|married|abroad)')
      OR distribution_residence_text(x)
  FROM (SELECT regexp_replace(lower(normalize(guard_compact(t), NFKC)),
                              '([一-龥])[0-9]+', '\1', 'g') AS x) s
$$;
"""

RULE = r"""CREATE OR REPLACE FUNCTION distribution_rule_lawful() RETURNS trigger
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
  IF TG_OP = 'INSERT' AND NEW.status <> 'computed' THEN
    RAISE EXCEPTION 'distribution.paid: a run is computed, its payouts recorded, then marked paid — never inserted paid'
      USING ERRCODE = 'check_violation';
  END IF;
  IF NOT EXISTS (SELECT 1 FROM share_quantification q WHERE q.id = NEW.quantification_id
                 AND q.collective_id = NEW.collective_id) THEN
    RAISE EXCEPTION 'distribution.quantification: a run pays on its own collective''s shares'
      USING ERRCODE = 'check_violation';
  END IF;
  IF distribution_residence_text(NEW.rule::text) OR distribution_residence_text(NEW.rule_note)
     OR distribution_excludes_text(NEW.rule_note)
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

"""

CHECK = r"""CREATE OR REPLACE FUNCTION distribution_check_complete(d distribution) RETURNS void
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
  -- every member on the roll on the quantification's base date who is still a member on the
  -- payment date holds current shares in it (a roll that drops someone is never paid on)
  SELECT count(*) INTO missing FROM membership m
   WHERE m.collective_id = q.collective_id AND m.began_on <= q.base_date
     AND (m.ended_on IS NULL OR m.ended_on > d.paid_on)
     AND NOT EXISTS (SELECT 1 FROM share_holding h WHERE h.quantification_id = q.id
                     AND h.person_id = m.person_id AND h.ended_on IS NULL);
  IF missing > 0 THEN
    RAISE EXCEPTION 'distribution.rule.art55: % member(s) on the roll hold no shares in this quantification — a member is never excluded for hukou place, residence or settling in town (乡村振兴促进法 art 55)',
      missing USING ERRCODE = 'check_violation';
  END IF;
  IF (SELECT count(DISTINCT population_centi) FROM share_holding
       WHERE quantification_id = q.id) > 1 THEN
    RAISE EXCEPTION 'distribution.rule.art55: population shares differ between members — every member''s population share is alike (乡村振兴促进法 art 55)'
      USING ERRCODE = 'check_violation';
  END IF;
  IF EXISTS (SELECT 1 FROM distribution_payout p WHERE p.distribution_id = d.id
             AND p.person_id IS NOT NULL AND NOT EXISTS (
               SELECT 1 FROM share_holding h WHERE h.quantification_id = q.id
                AND h.person_id = p.person_id AND h.ended_on IS NULL))
     OR (SELECT coalesce(sum(shares_centi), 0) FROM distribution_payout
          WHERE distribution_id = d.id AND person_id IS NULL) <> q.collective_centi THEN
    RAISE EXCEPTION 'distribution.sum: payouts go to the share holders and the collective share only'
      USING ERRCODE = 'check_violation';
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

"""

HOLDING = r"""-- a holding never shrinks, moves or disappears: only its end is recorded, once — adjusted by a
-- later quantification of the same collective, or inherited after the holder's death
CREATE OR REPLACE FUNCTION share_holding_fixed() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE q share_quantification;
BEGIN
  IF TG_OP = 'DELETE' THEN
    RAISE EXCEPTION 'membership.shares.fixed: share holdings are history and are never deleted (乡村振兴促进法 art 55)'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF OLD.ended_on IS NOT NULL OR NEW.quantification_id <> OLD.quantification_id
     OR NEW.person_id <> OLD.person_id OR NEW.household_id IS DISTINCT FROM OLD.household_id
     OR NEW.population_centi <> OLD.population_centi OR NEW.labour_centi <> OLD.labour_centi
     OR NEW.shares_centi <> OLD.shares_centi OR NEW.source <> OLD.source
     OR NEW.inherited_from_id IS DISTINCT FROM OLD.inherited_from_id THEN
    RAISE EXCEPTION 'membership.shares.fixed: a member''s shares never shrink or move; only their end (adjusted, inherited) is recorded, once (乡村振兴促进法 art 55)'
      USING ERRCODE = 'check_violation';
  END IF;
  SELECT * INTO q FROM share_quantification WHERE id = OLD.quantification_id;
  IF NEW.end_ground = 'adjusted' AND NOT EXISTS (
       SELECT 1 FROM share_quantification n WHERE n.collective_id = q.collective_id
        AND n.id <> q.id AND n.base_date > q.base_date AND n.base_date = NEW.ended_on) THEN
    RAISE EXCEPTION 'membership.shares.adjusted: shares end as adjusted only on a later quantification''s base date'
      USING ERRCODE = 'check_violation';
  END IF;
  IF NEW.end_ground = 'inherited' AND NOT EXISTS (
       SELECT 1 FROM membership m WHERE m.collective_id = q.collective_id
        AND m.person_id = OLD.person_id AND m.end_ground = 'death'
        AND m.ended_on <= NEW.ended_on) THEN
    RAISE EXCEPTION 'membership.shares.inheritance: shares pass on only after the holder''s death (农村集体经济组织法 art 17; 乡村振兴促进法 art 55)'
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER share_holding_fixed BEFORE UPDATE OR DELETE ON share_holding
  FOR EACH ROW EXECUTE FUNCTION share_holding_fixed();

-- static management (生不增、死不减) and the charter's interval, in the database too
CREATE OR REPLACE FUNCTION share_quantification_charter() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE last share_quantification; r membership_charter_rule;
BEGIN
  IF TG_OP <> 'INSERT' THEN
    RAISE EXCEPTION 'membership.shares.fixed: a quantification is history and never changes'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  SELECT * INTO last FROM share_quantification WHERE collective_id = NEW.collective_id
   ORDER BY base_date DESC, id DESC LIMIT 1;
  IF FOUND THEN
    SELECT * INTO r FROM membership_charter_rule WHERE collective_id = NEW.collective_id;
    IF NOT FOUND OR r.management = 'static' THEN
      RAISE EXCEPTION 'membership.shares.static: the charter keeps shares static (生不增、死不减)'
        USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.base_date < last.base_date + make_interval(years => r.adjust_every_years) THEN
      RAISE EXCEPTION 'membership.shares.interval: the charter adjusts shares every % years', r.adjust_every_years
        USING ERRCODE = 'check_violation';
    END IF;
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER share_quantification_charter BEFORE INSERT OR UPDATE OR DELETE
  ON share_quantification FOR EACH ROW EXECUTE FUNCTION share_quantification_charter();

REVOKE DELETE ON share_holding FROM {app};
REVOKE UPDATE, DELETE ON share_quantification FROM {app};
"""

OLD_RULE = r"""CREATE OR REPLACE FUNCTION distribution_rule_lawful() RETURNS trigger
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

"""

OLD_CHECK = r"""CREATE OR REPLACE FUNCTION distribution_check_complete(d distribution) RETURNS void
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

"""

DOWN = r"""DROP TRIGGER IF EXISTS share_holding_fixed ON share_holding;
DROP TRIGGER IF EXISTS share_quantification_charter ON share_quantification;
DROP FUNCTION IF EXISTS share_holding_fixed(), share_quantification_charter();
GRANT DELETE ON share_holding TO {app};
GRANT UPDATE, DELETE ON share_quantification TO {app};
"""


ASSEMBLY = r"""
-- the assembly's roll is the roll: members_total is every member on the meeting date, fixed
CREATE OR REPLACE FUNCTION member_assembly_roll() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE n integer;
BEGIN
  IF TG_OP <> 'INSERT' THEN
    RAISE EXCEPTION 'membership.assembly.fixed: an assembly''s date and roll never change'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  SELECT count(DISTINCT person_id) INTO n FROM membership
   WHERE collective_id = NEW.collective_id AND began_on <= NEW.meeting_date
     AND (ended_on IS NULL OR ended_on > NEW.meeting_date);
  IF NEW.members_total <> n THEN
    RAISE EXCEPTION 'membership.assembly.roll: % members on the roll on %, not % — the threshold counts all members (农村集体经济组织法 art 26)',
      n, NEW.meeting_date, NEW.members_total USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER member_assembly_roll BEFORE INSERT OR UPDATE OR DELETE ON member_assembly
  FOR EACH ROW EXECUTE FUNCTION member_assembly_roll();

-- only members on the meeting date attend
CREATE OR REPLACE FUNCTION member_assembly_attendance_member() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM member_assembly a JOIN membership m
                   ON m.collective_id = a.collective_id AND m.person_id = NEW.person_id
                  WHERE a.id = NEW.assembly_id AND m.began_on <= a.meeting_date
                    AND (m.ended_on IS NULL OR m.ended_on > a.meeting_date)) THEN
    RAISE EXCEPTION 'membership.assembly.not_member: only members of the collective on the meeting date attend and vote (农村集体经济组织法 art 26)'
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER member_assembly_attendance_member BEFORE INSERT ON member_assembly_attendance
  FOR EACH ROW EXECUTE FUNCTION member_assembly_attendance_member();

-- an application is decided once; again only after an objection against it was upheld (the
-- application row is locked, so two concurrent decisions wait for each other)
CREATE OR REPLACE FUNCTION member_assembly_resolution_once() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
  PERFORM 1 FROM membership_application WHERE id = NEW.application_id FOR UPDATE;
  IF (SELECT count(*) FROM member_assembly_resolution WHERE application_id = NEW.application_id)
     > (SELECT count(*) FROM roll_objection WHERE application_id = NEW.application_id
         AND resolution = 'upheld') THEN
    RAISE EXCEPTION 'membership.application.not_pending: this application was already decided (农村集体经济组织法 art 26)'
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER member_assembly_resolution_once BEFORE INSERT ON member_assembly_resolution
  FOR EACH ROW EXECUTE FUNCTION member_assembly_resolution_once();

REVOKE UPDATE, DELETE ON member_assembly FROM {app};

-- every member holds a population share, whatever the charter
ALTER TABLE membership_charter_rule ADD CONSTRAINT ck_membership_charter_rule_population
  CHECK (population_centi > 0);
"""

ASSEMBLY_DOWN = r"""
DROP TRIGGER IF EXISTS member_assembly_roll ON member_assembly;
DROP TRIGGER IF EXISTS member_assembly_attendance_member ON member_assembly_attendance;
DROP TRIGGER IF EXISTS member_assembly_resolution_once ON member_assembly_resolution;
DROP FUNCTION IF EXISTS member_assembly_roll(), member_assembly_attendance_member(),
  member_assembly_resolution_once();
GRANT UPDATE, DELETE ON member_assembly TO {app};
ALTER TABLE membership_charter_rule DROP CONSTRAINT IF EXISTS ck_membership_charter_rule_population;
"""


def upgrade():
    op.execute(EXCLUDES)
    op.execute(RULE)
    op.execute(CHECK)
    op.execute(HOLDING.replace("{app}", APP_ROLE))
    op.execute(ASSEMBLY.replace("{app}", APP_ROLE))


def downgrade():
    op.execute(ASSEMBLY_DOWN.replace("{app}", APP_ROLE))
    op.execute(DOWN.replace("{app}", APP_ROLE))
    op.execute(OLD_RULE)
    op.execute(OLD_CHECK)
    op.execute("DROP FUNCTION IF EXISTS distribution_excludes_text(text)")
