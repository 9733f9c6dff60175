"""A member's shares end as 'adjusted' only into the later quantification that holds theirs
(tests/test_atk_0051.py::test_a_share_roll_adjustment_cannot_leave_out_a_settled_member).

On the app's own connection a periodic re-quantification could be written without a member
who settled in town, and that member's holding ended as 'adjusted' on its base date: the share
roll dropped them (share_holding_fixed asked only that a later quantification exists).  The
distribution check (distribution_check_complete) refused to pay on such a roll, but the member's
shares were gone from the roll and from the household's share certificate.  Now the ending is
refused at commit (deferred: the quantification's holdings are written after the old ones end)
when the person is a member on the later base date and holds no shares in that quantification
(乡村振兴促进法 art 55: hukou place, residence or settling in town never excludes a member;
农村集体经济组织法 art 17).

Revision ID: 0054_atk_0051_shares
Revises: 0053_atk_0051
"""
from alembic import op

revision = "0054_atk_0051_shares"
down_revision = "0053_atk_0051"
branch_labels = None
depends_on = None

UP = r"""
CREATE OR REPLACE FUNCTION share_holding_adjusted_kept() RETURNS trigger LANGUAGE plpgsql
  SET search_path = public, pg_temp AS $$
DECLARE q share_quantification;
BEGIN
  SELECT * INTO q FROM share_quantification WHERE id = NEW.quantification_id;
  IF EXISTS (SELECT 1 FROM membership m
              WHERE m.collective_id = q.collective_id AND m.person_id = NEW.person_id
                AND m.began_on <= NEW.ended_on
                AND (m.ended_on IS NULL OR m.ended_on > NEW.ended_on))
     AND NOT EXISTS (SELECT 1 FROM share_quantification n
                      JOIN share_holding h ON h.quantification_id = n.id
                       AND h.person_id = NEW.person_id
                     WHERE n.collective_id = q.collective_id AND n.id <> q.id
                       AND n.base_date = NEW.ended_on) THEN
    RAISE EXCEPTION 'membership.shares.adjusted: person % is a member on % and holds no shares in the quantification of that date: an adjustment re-quantifies every member on the roll, settled in town or not (乡村振兴促进法 art 55; 农村集体经济组织法 art 17)', NEW.person_id, NEW.ended_on
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER share_holding_adjusted_kept AFTER UPDATE OF ended_on, end_ground
  ON share_holding DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
  WHEN (NEW.end_ground = 'adjusted' AND OLD.ended_on IS NULL)
  EXECUTE FUNCTION share_holding_adjusted_kept();
"""

DOWN = r"""
DROP TRIGGER share_holding_adjusted_kept ON share_holding;
DROP FUNCTION share_holding_adjusted_kept();
"""


def upgrade():
    op.execute(UP)


def downgrade():
    op.execute(DOWN)
