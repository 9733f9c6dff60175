"""One human, one place on a settlement application (attack on 0045; tests/test_atk_person.py).

uq_settlement_member (application_id, person_id) held one row per human while a person had one
row.  Since 0045 a person has a row per county of their rolls: the applicant's row of another
county could be listed as their own "spouse" moving with them, and the approval recorded two
hukou moves of one human (the second from the town to the town).  settlement_member_once(), a
BEFORE INSERT trigger: no row of the same ID number is on the application yet (国发〔2014〕25号;
公安部 户口迁移: one hukou, one move).

Revision ID: 0048_settlement_member_once
Revises: 0047_person_split_local
"""
from alembic import op

revision = "0048_settlement_member_once"
down_revision = "0047_person_split_local"
branch_labels = None
depends_on = None

FN = """
CREATE OR REPLACE FUNCTION settlement_member_once() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
  -- the application row first: concurrent additions to one application queue here
  PERFORM 1 FROM settlement_application WHERE id = NEW.application_id FOR UPDATE;
  IF EXISTS (SELECT 1 FROM settlement_member s JOIN person p ON p.id = s.person_id
               JOIN person q ON q.id_number = p.id_number
              WHERE s.application_id = NEW.application_id AND q.id = NEW.person_id) THEN
    RAISE EXCEPTION 'settlement.member_once: person % is already on settlement application % (the same ID number): one human moves once (国务院关于进一步推进户籍制度改革的意见, 国发〔2014〕25号)', NEW.person_id, NEW.application_id
      USING ERRCODE = 'unique_violation';
  END IF;
  RETURN NEW;
END $$;
"""


def upgrade():
    op.execute(FN)
    op.execute("CREATE TRIGGER settlement_member_once BEFORE INSERT ON settlement_member "
               "FOR EACH ROW EXECUTE FUNCTION settlement_member_once()")


def downgrade():
    op.execute("DROP TRIGGER settlement_member_once ON settlement_member")
    op.execute("DROP FUNCTION settlement_member_once()")
