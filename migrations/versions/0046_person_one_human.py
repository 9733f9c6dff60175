"""An ID number names one human, whatever the number of their rows (attack on 0045; tests/
test_atk_person.py).

Since 0045 a person has one row per county, and UNIQUE (id_number, county_code) replaced
UNIQUE (id_number).  Every rule about "this person" joins rows by ID number (0044: a consent
from one's own account, the settlement flag and participants of a withdrawal, the "joined
another household" successor; app.people.operations.rows_of).  The app role may UPDATE
person.id_number, and nothing stopped it:
- a row of one county renumbered to the ID number of a person registered only in another
  county was let through (the pair is unique per county): the row — and whatever account,
  consent or settlement names it — became that other human for every one of those rules (a
  farmer's account on the row then consents "for themselves" to another's withdrawal);
- one row of a person on two counties' rolls renumbered alone split one human in two: a
  settlement in town recorded on one half is no longer seen by the rules guarding the rights
  held through the other (农村土地承包法 art 27; 乡村振兴促进法 art 55).

person_one_human(), an AFTER UPDATE statement trigger with transition tables: every row
renumbered from one ID number goes to the same new number, with every other row of the old
number (no row left behind), and into a number no other human's row bears.  A correction of a
wrong number renumbers all the person's rows in one statement (居民身份证法 art 3: the citizen
ID number is each citizen's own, unique and lifelong; GB 11643-1999).

Revision ID: 0046_person_one_human
Revises: 0045_citus_person
"""
from alembic import op

revision = "0046_person_one_human"
down_revision = "0045_citus_person"
branch_labels = None
depends_on = None

FN = """
CREATE OR REPLACE FUNCTION person_one_human() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE bad record;
BEGIN
  -- one human split: a row of the old number left behind, or two new numbers for one old
  WITH c AS (SELECT o.id, o.id_number AS was, n.id_number AS now FROM person_old o
             JOIN person_new n ON n.id = o.id WHERE o.id_number IS DISTINCT FROM n.id_number)
  SELECT c.was, c.now INTO bad FROM c
   WHERE EXISTS (SELECT 1 FROM person p WHERE p.id_number = c.was
                  AND p.id NOT IN (SELECT r.id FROM c r WHERE r.now = c.was))
      OR EXISTS (SELECT 1 FROM c r WHERE r.was = c.was AND r.now <> c.now)
   LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'person.id_number.one_human: ID number % would be changed on some of the person''s rows only: a correction renumbers every county''s row of the person at once (居民身份证法 art 3; GB 11643-1999)', left(bad.was, 6) || '********' || right(bad.was, 4)
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  -- two humans merged: the new number borne by a row that did not come from the same old one
  WITH c AS (SELECT o.id, o.id_number AS was, n.id_number AS now FROM person_old o
             JOIN person_new n ON n.id = o.id WHERE o.id_number IS DISTINCT FROM n.id_number)
  SELECT c.was, c.now INTO bad FROM c
   WHERE EXISTS (SELECT 1 FROM person p WHERE p.id_number = c.now
                  AND p.id NOT IN (SELECT r.id FROM c r WHERE r.was = c.was))
   LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'person.id_number.one_human: ID number % belongs to another registered person: a row never takes another human''s ID number (居民身份证法 art 3; GB 11643-1999)', left(bad.now, 6) || '********' || right(bad.now, 4)
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  RETURN NULL;
END $$;
"""


def upgrade():
    op.execute(FN)
    op.execute("CREATE TRIGGER person_one_human AFTER UPDATE ON person "
               "REFERENCING OLD TABLE AS person_old NEW TABLE AS person_new "
               "FOR EACH STATEMENT EXECUTE FUNCTION person_one_human()")


def downgrade():
    op.execute("DROP TRIGGER person_one_human ON person")
    op.execute("DROP FUNCTION person_one_human()")
