"""The split of 0045, finished for the coordinator-local rows tied to one county's roll (attack
on 0045; tests/test_atk_person.py).

0045 split a person on two counties' rolls and re-pointed that county's household places,
memberships, rights and headships at their new row there, but left every coordinator-local
row on the row it named.  Some of those rows belong to one county's roll and are matched to it
by person row in the database's own rules:
- share_holding (a collective's quantification) and distribution_payout (its distribution):
  the distribution check finds every member on the roll holding current shares and being paid
  on them by `h.person_id = m.person_id` (distribution_payout_open, 乡村振兴促进法 art 55).  A
  member whose membership moved to the new row but whose shares stayed on the old one was
  "without shares", and the collective could pay no distribution again; an inheritance of the
  shares (share_holding_inheritance, _fixed) missed the household place and the death too;
- member_assembly_attendance (the collective's assembly);
- withdrawal_consent and market_consent (a household's co-holders, matched to the household
  place: withdrawal_missing_consents and the listing's consents), so a consent given before the
  split no longer counted for its co-holder.
Each such row now names the person's row in its parent's county (the same ID number; 0045 made
that row when it re-pointed the roll there).  Rows made since 0045 already do (the operations
name the row of the roll).  Data only; the downgrade leaves the rows as they are (still valid).

Revision ID: 0047_person_split_local
Revises: 0046_person_one_human
"""
from alembic import op

revision = "0047_person_split_local"
down_revision = "0046_person_one_human"
branch_labels = None
depends_on = None

# table -> the county of the roll the row belongs to (an expression over the row `t`)
PARENT = {
    "share_holding": "(SELECT q.collective_county_code FROM share_quantification q "
                     "WHERE q.id = t.quantification_id)",
    "distribution_payout": "(SELECT d.collective_county_code FROM distribution d "
                           "WHERE d.id = t.distribution_id)",
    "member_assembly_attendance": "(SELECT a.collective_county_code FROM member_assembly a "
                                  "WHERE a.id = t.assembly_id)",
    "withdrawal_consent": "(SELECT left(w.household_code, 6) FROM withdrawal w "
                          "WHERE w.id = t.withdrawal_id)",
    "market_consent": "(SELECT left(l.household_code, 6) FROM market_listing l "
                      "WHERE l.id = t.listing_id)",
}


def upgrade():
    for table, county in PARENT.items():
        op.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")  # append-only / fixed guards
        op.execute(f"""
            UPDATE {table} t SET person_id = q.id, person_county_code = q.county_code
              FROM person p JOIN person q ON q.id_number = p.id_number
             WHERE p.id = t.person_id AND q.county_code = {county}
               AND t.person_county_code IS DISTINCT FROM q.county_code""")
        op.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")


def downgrade():
    pass  # the re-pointed rows are valid at 0046 and 0045 alike
