"""A person's rows are one human: one name, one hukou (attack on 0045; tests/test_atk_person.py).

Since 0045 a person has a row per county of their rolls.  person_row_in() makes a second
county's row as a copy of the person's row, and a settlement's approval moves the hukou on every
row — but the import inserts a second county's row itself, from the delivery
(app.people.operations.insert_persons_from_staging): its name, and a hukou in the delivery's
village.  A human who had settled in town got a row saying their hukou was in a village again
(a settlement could be applied for on it; the person's scope took that village in).  Before the
split the delivery kept the registered person (ON CONFLICT (id_number) DO NOTHING).

- person_human(), BEFORE INSERT: a row of an ID number already registered (in another county)
  takes the registered person's name, sex, birth date, hukou place and address and phone (the
  lowest id's); the county stays the row's own.
- person_one_hukou, a deferred constraint trigger on UPDATE of the hukou (an insert took the
  human's, above): by commit time every row of an ID number has the same hukou place and
  address (户口登记条例 art 6: a citizen is registered as a permanent resident in one place
  only).  A settlement's
  approval moves every row in its transaction (app.settlement.operations.approve).

Revision ID: 0049_person_one_hukou
Revises: 0048_settlement_member_once
"""
from alembic import op

revision = "0049_person_one_hukou"
down_revision = "0048_settlement_member_once"
branch_labels = None
depends_on = None

HUMAN_FN = """
CREATE OR REPLACE FUNCTION person_human() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE r person;
BEGIN
  SELECT * INTO r FROM person WHERE id_number = NEW.id_number ORDER BY id LIMIT 1;
  IF FOUND THEN
    NEW.name := r.name; NEW.sex := r.sex; NEW.birth_date := r.birth_date;
    NEW.hukou_division_code := r.hukou_division_code; NEW.hukou_address := r.hukou_address;
    NEW.phone := coalesce(r.phone, NEW.phone);
  END IF;
  RETURN NEW;
END $$;
"""

HUKOU_FN = """
CREATE OR REPLACE FUNCTION person_one_hukou() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
  IF (SELECT count(DISTINCT (coalesce(hukou_division_code, ''), coalesce(hukou_address, '')))
        FROM person WHERE id_number = NEW.id_number) > 1 THEN
    RAISE EXCEPTION 'person.hukou.one_human: the rows of person % (ID number %) disagree on the hukou: a person is registered in one place only, and a recorded hukou move moves every county''s row of them (户口登记条例 art 6)', NEW.id, left(NEW.id_number, 6) || '********' || right(NEW.id_number, 4)
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  RETURN NULL;
END $$;
"""


def upgrade():
    # rows split by 0045 were copies; a row the import made since may differ: the human's
    # first row wins (the registered person, as before the split)
    op.execute("""
        UPDATE person t SET hukou_division_code = f.hukou_division_code,
                            hukou_address = f.hukou_address
          FROM (SELECT DISTINCT ON (id_number) id_number, hukou_division_code, hukou_address
                  FROM person ORDER BY id_number, id) f
         WHERE f.id_number = t.id_number
           AND (t.hukou_division_code IS DISTINCT FROM f.hukou_division_code
                OR t.hukou_address IS DISTINCT FROM f.hukou_address)""")
    op.execute(HUMAN_FN)
    op.execute("CREATE TRIGGER person_human BEFORE INSERT ON person FOR EACH ROW "
               "EXECUTE FUNCTION person_human()")
    op.execute(HUKOU_FN)
    # on UPDATE only: an insert takes the human's hukou (person_human), and the import's bulk
    # insert then queues no deferred event per person
    op.execute("CREATE CONSTRAINT TRIGGER person_one_hukou AFTER UPDATE OF "
               "hukou_division_code, hukou_address ON person DEFERRABLE INITIALLY DEFERRED "
               "FOR EACH ROW EXECUTE FUNCTION person_one_hukou()")


def downgrade():
    op.execute("DROP TRIGGER person_one_hukou ON person")
    op.execute("DROP FUNCTION person_one_hukou()")
    op.execute("DROP TRIGGER person_human ON person")
    op.execute("DROP FUNCTION person_human()")
