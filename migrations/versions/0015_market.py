"""The transfer-trading market I: mandates, listings, consents, encumbrances, applicants,
applications and the deposit ledger, with the database's own guards:

- `gb32100_valid(code)`: the 统一社会信用代码's check character (GB 32100-2015), a CHECK on
  applicants beside `gb11643_valid` for persons;
- no two *live* listings over one parcel for overlapping terms: an exclusion constraint on
  (parcel_uid, daterange) (btree_gist); a row's `live` flag follows its listing's status by
  trigger, so no writer can forget it; nor a live listing over a parcel under a current land
  management right for an overlapping period (trigger);
- consents, creditor/court consents, mandates and the ledger are append-only (UPDATE/DELETE
  refused by trigger, whatever the grants); an encumbrance is only ever released, once;
- every ledger transaction sums to zero (a deferred constraint trigger checked at commit).

Revision ID: 0015_market
Revises: 0013_guard_text
"""
from alembic import op
import sqlalchemy as sa

revision = "0015_market"
down_revision = "0013_guard_text"
branch_labels = None
depends_on = None

BEFORE = r"""
CREATE EXTENSION IF NOT EXISTS btree_gist;
CREATE OR REPLACE FUNCTION gb32100_valid(code text) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
  chars constant text := '0123456789ABCDEFGHJKLMNPQRTUWXY';
  weights constant int[] := ARRAY[1,3,9,27,19,26,16,17,20,29,25,13,8,24,10,30,28];
  s int := 0; v int; c int;
BEGIN
  IF code IS NULL OR code !~ '^[0-9A-HJ-NPQRTUWXY]{18}$' THEN RETURN false; END IF;
  FOR i IN 1..17 LOOP
    v := strpos(chars, substr(code, i, 1)) - 1;
    s := s + v * weights[i];
  END LOOP;
  c := (31 - s % 31) % 31;
  RETURN substr(chars, c + 1, 1) = substr(code, 18, 1);
END $$;
"""

AFTER = r"""
ALTER TABLE market_listing_parcel ADD CONSTRAINT market_listing_parcel_no_overlap
  EXCLUDE USING gist (parcel_uid WITH =, daterange(term_start, term_end, '[]') WITH &&)
  WHERE (live);

CREATE FUNCTION market_listing_live() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' OR NEW.status IS DISTINCT FROM OLD.status
     OR NEW.term_start IS DISTINCT FROM OLD.term_start
     OR NEW.term_end IS DISTINCT FROM OLD.term_end THEN
    UPDATE market_listing_parcel SET live = NEW.status IN
      ('review','announced','agreement','competition','negotiation'),
      term_start = NEW.term_start, term_end = NEW.term_end
    WHERE listing_id = NEW.id;
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER market_listing_live AFTER INSERT OR UPDATE ON market_listing
  FOR EACH ROW EXECUTE FUNCTION market_listing_live();

CREATE FUNCTION market_parcel_live() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE l market_listing;
BEGIN
  SELECT * INTO l FROM market_listing WHERE id = NEW.listing_id;
  NEW.live := l.status IN ('review','announced','agreement','competition','negotiation');
  NEW.term_start := l.term_start;
  NEW.term_end := l.term_end;
  RETURN NEW;
END $$;
CREATE TRIGGER market_parcel_live BEFORE INSERT ON market_listing_parcel
  FOR EACH ROW EXECUTE FUNCTION market_parcel_live();

-- Nor over a parcel under a current land management right for an overlapping period.
CREATE FUNCTION market_parcel_not_managed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE hit record;
BEGIN
  IF NEW.live THEN
    SELECT rp.parcel_code, coalesce(r.holder_name, r.uid::text) AS holder INTO hit
    FROM land_right r JOIN land_right_parcel rp ON rp.right_id = r.id
    WHERE r.kind = 'management' AND r.status = 'current' AND r.end_lifespan IS NULL
      AND rp.parcel_uid = NEW.parcel_uid
      AND daterange(r.term_start, r.term_end, '[]')
          && daterange(NEW.term_start, NEW.term_end, '[]')
    LIMIT 1;
    IF FOUND THEN
      RAISE EXCEPTION 'parcel % is under the current management right of % for an overlapping period',
        hit.parcel_code, hit.holder
        USING ERRCODE = 'exclusion_violation', CONSTRAINT = 'market_parcel_not_managed';
    END IF;
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER market_parcel_not_managed BEFORE INSERT OR UPDATE ON market_listing_parcel
  FOR EACH ROW EXECUTE FUNCTION market_parcel_not_managed();

CREATE FUNCTION market_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
    USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER market_consent_append_only BEFORE UPDATE OR DELETE ON market_consent
  FOR EACH ROW EXECUTE FUNCTION market_append_only();
CREATE TRIGGER market_encumbrance_consent_append_only BEFORE UPDATE OR DELETE
  ON market_encumbrance_consent FOR EACH ROW EXECUTE FUNCTION market_append_only();
CREATE TRIGGER market_mandate_append_only BEFORE UPDATE OR DELETE ON market_mandate
  FOR EACH ROW EXECUTE FUNCTION market_append_only();
CREATE TRIGGER market_ledger_txn_append_only BEFORE UPDATE OR DELETE ON market_ledger_txn
  FOR EACH ROW EXECUTE FUNCTION market_append_only();
CREATE TRIGGER market_ledger_entry_append_only BEFORE UPDATE OR DELETE ON market_ledger_entry
  FOR EACH ROW EXECUTE FUNCTION market_append_only();
CREATE TRIGGER market_no_truncate BEFORE TRUNCATE ON market_ledger_entry
  FOR EACH STATEMENT EXECUTE FUNCTION market_append_only();
CREATE TRIGGER market_no_truncate BEFORE TRUNCATE ON market_ledger_txn
  FOR EACH STATEMENT EXECUTE FUNCTION market_append_only();

CREATE FUNCTION right_encumbrance_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' OR OLD.released_on IS NOT NULL
     OR (NEW.id, NEW.right_uid, NEW.kind, NEW.holder, NEW.reference, NEW.reason,
         NEW.recorded_by, NEW.recorded_at)
        IS DISTINCT FROM (OLD.id, OLD.right_uid, OLD.kind, OLD.holder, OLD.reference,
                          OLD.reason, OLD.recorded_by, OLD.recorded_at) THEN
    RAISE EXCEPTION 'an encumbrance is only ever released, once; % refused', TG_OP
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER right_encumbrance_guard BEFORE UPDATE OR DELETE ON right_encumbrance
  FOR EACH ROW EXECUTE FUNCTION right_encumbrance_guard();

CREATE FUNCTION market_ledger_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE total bigint;
BEGIN
  SELECT sum(amount_fen) INTO total FROM market_ledger_entry WHERE txn_id = NEW.txn_id;
  IF total <> 0 THEN
    RAISE EXCEPTION 'ledger transaction % does not balance (% fen)', NEW.txn_id, total
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER market_ledger_balanced AFTER INSERT ON market_ledger_entry
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION market_ledger_balanced();
"""

DROP = r"""
DROP FUNCTION IF EXISTS market_ledger_balanced() CASCADE;
DROP FUNCTION IF EXISTS right_encumbrance_guard() CASCADE;
DROP FUNCTION IF EXISTS market_append_only() CASCADE;
DROP FUNCTION IF EXISTS market_parcel_live() CASCADE;
DROP FUNCTION IF EXISTS market_parcel_not_managed() CASCADE;
DROP FUNCTION IF EXISTS market_listing_live() CASCADE;
"""


def upgrade():
    op.execute(BEFORE)
    op.create_table('market_applicant',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('id_number', sa.String(length=18), nullable=True),
    sa.Column('credit_code', sa.String(length=18), nullable=True),
    sa.Column('contact_name', sa.String(length=50), nullable=True),
    sa.Column('phone', sa.String(length=20), nullable=False),
    sa.Column('farming_capacity', sa.Text(), nullable=False),
    sa.Column('key_sha256', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("(kind = 'person' AND id_number IS NOT NULL AND gb11643_valid(id_number)) OR (kind <> 'person' AND credit_code IS NOT NULL AND gb32100_valid(credit_code))", name=op.f('ck_market_applicant_identity_checked')),
    sa.CheckConstraint("kind IN ('person','family_farm','cooperative','company')", name=op.f('ck_market_applicant_kind')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_market_applicant')),
    sa.UniqueConstraint('key_sha256', name=op.f('uq_market_applicant_key_sha256'))
    )
    op.create_table('market_mandate',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('household_code', sa.String(length=18), nullable=False),
    sa.Column('agent', sa.String(length=12), nullable=False),
    sa.Column('agent_name', sa.String(length=100), nullable=False),
    sa.Column('scope', sa.Text(), nullable=False),
    sa.Column('valid_from', sa.Date(), nullable=False),
    sa.Column('valid_until', sa.Date(), nullable=False),
    sa.Column('filename', sa.String(length=200), nullable=False),
    sa.Column('content', sa.LargeBinary(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('uploaded_by', sa.String(length=50), nullable=False),
    sa.Column('uploaded_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("agent IN ('collective','exchange')", name=op.f('ck_market_mandate_agent')),
    sa.CheckConstraint("length(content) > 0 AND sha256 = encode(sha256(content), 'hex')", name=op.f('ck_market_mandate_file_kept')),
    sa.CheckConstraint('valid_until >= valid_from', name=op.f('ck_market_mandate_validity')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_market_mandate'))
    )
    with op.batch_alter_table('market_mandate', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_market_mandate_household_code'), ['household_code'], unique=False)

    op.create_table('right_encumbrance',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('right_uid', sa.BigInteger(), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('holder', sa.String(length=200), nullable=False),
    sa.Column('reference', sa.String(length=200), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('recorded_by', sa.String(length=50), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('released_on', sa.Date(), nullable=True),
    sa.Column('released_by', sa.String(length=50), nullable=True),
    sa.Column('release_reason', sa.Text(), nullable=True),
    sa.CheckConstraint("kind IN ('mortgage','seizure')", name=op.f('ck_right_encumbrance_kind')),
    sa.CheckConstraint('(released_on IS NULL) = (released_by IS NULL)', name=op.f('ck_right_encumbrance_release')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_right_encumbrance'))
    )
    with op.batch_alter_table('right_encumbrance', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_right_encumbrance_right_uid'), ['right_uid'], unique=False)

    op.create_table('market_listing',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=14), nullable=False),
    sa.Column('item_class', sa.String(length=10), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('right_uid', sa.BigInteger(), nullable=True),
    sa.Column('household_code', sa.String(length=18), nullable=True),
    sa.Column('fbfbm', sa.String(length=14), nullable=False),
    sa.Column('county_code', sa.String(length=6), nullable=False),
    sa.Column('township_code', sa.String(length=9), nullable=False),
    sa.Column('listed_by', sa.String(length=50), nullable=False),
    sa.Column('listed_via', sa.String(length=12), nullable=False),
    sa.Column('mandate_id', sa.Integer(), nullable=True),
    sa.Column('resolution_ref', sa.String(length=200), nullable=True),
    sa.Column('swap_household_code', sa.String(length=18), nullable=True),
    sa.Column('issuing_party_consent_ref', sa.String(length=200), nullable=True),
    sa.Column('term_start', sa.Date(), nullable=False),
    sa.Column('term_end', sa.Date(), nullable=False),
    sa.Column('land_use', sa.String(length=1), nullable=False),
    sa.Column('use_description', sa.Text(), nullable=True),
    sa.Column('area_mu', sa.Numeric(precision=12, scale=2), server_default='0', nullable=False),
    sa.Column('reserve_price', sa.Numeric(precision=12, scale=2), nullable=False),
    sa.Column('payment_schedule', sa.String(length=200), nullable=False),
    sa.Column('retransfer_allowed', sa.Boolean(), nullable=False),
    sa.Column('transferee_conditions', sa.Text(), nullable=True),
    sa.Column('deposit_fen', sa.BigInteger(), nullable=False),
    sa.Column('method', sa.String(length=8), nullable=False),
    sa.Column('announcement_days', sa.Integer(), nullable=False),
    sa.Column('reannounce_max', sa.Integer(), nullable=False),
    sa.Column('reannounce_count', sa.Integer(), server_default='0', nullable=False),
    sa.Column('mortgaged', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('seized', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('asset_description', sa.Text(), nullable=True),
    sa.Column('asset_valuation', sa.Numeric(precision=14, scale=2), nullable=True),
    sa.Column('status', sa.String(length=12), server_default='draft', nullable=False),
    sa.Column('review_note', sa.Text(), nullable=True),
    sa.Column('reviewed_by', sa.String(length=50), nullable=True),
    sa.Column('announced_on', sa.Date(), nullable=True),
    sa.Column('announcement_ends_on', sa.Date(), nullable=True),
    sa.Column('calendar_note', sa.Text(), nullable=True),
    sa.Column('ended_on', sa.Date(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("(item_class = 'household' AND kind IN ('lease','subcontract','equity','other','swap','transfer') AND right_uid IS NOT NULL AND household_code IS NOT NULL) OR (item_class = 'collective' AND kind IN ('reserve_land','wasteland','asset') AND resolution_ref IS NOT NULL)", name=op.f('ck_market_listing_item_class')),
    sa.CheckConstraint("item_class = 'collective' OR listed_via = 'own' OR mandate_id IS NOT NULL", name=op.f('ck_market_listing_mandate_for_agents')),
    sa.CheckConstraint("kind IN ('lease','subcontract','equity','other','swap','transfer','reserve_land','wasteland','asset')", name=op.f('ck_market_listing_kind')),
    sa.CheckConstraint("kind NOT IN ('swap','transfer') OR issuing_party_consent_ref IS NOT NULL", name=op.f('ck_market_listing_issuing_party_consent')),
    sa.CheckConstraint("land_use IN ('1','2','3','4')", name=op.f('ck_market_listing_agricultural_use')),
    sa.CheckConstraint("listed_via IN ('own','collective','exchange')", name=op.f('ck_market_listing_listed_via')),
    sa.CheckConstraint("method IN ('auction','tender')", name=op.f('ck_market_listing_method')),
    sa.CheckConstraint("status IN ('draft','review','returned','announced','agreement','competition','negotiation','withdrawn')", name=op.f('ck_market_listing_status')),
    sa.CheckConstraint("status NOT IN ('announced','agreement','competition','negotiation') OR (announced_on IS NOT NULL AND announcement_ends_on >= announced_on)", name=op.f('ck_market_listing_announcement_window')),
    sa.CheckConstraint('announcement_days >= 1 AND reannounce_max >= 0 AND reannounce_count >= 0', name=op.f('ck_market_listing_counts')),
    sa.CheckConstraint('reserve_price >= 0 AND deposit_fen >= 0', name=op.f('ck_market_listing_money')),
    sa.CheckConstraint('term_end > term_start', name=op.f('ck_market_listing_term')),
    sa.ForeignKeyConstraint(['mandate_id'], ['market_mandate.id'], name=op.f('fk_market_listing_mandate_id_market_mandate')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_market_listing'))
    )
    with op.batch_alter_table('market_listing', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_market_listing_fbfbm'), ['fbfbm'], unique=False)
        batch_op.create_index(batch_op.f('ix_market_listing_household_code'), ['household_code'], unique=False)
        batch_op.create_index(batch_op.f('ix_market_listing_right_uid'), ['right_uid'], unique=False)

    op.create_table('market_application',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('listing_id', sa.Integer(), nullable=False),
    sa.Column('applicant_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=14), nullable=False),
    sa.Column('priority_holder', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('member_person_id', sa.Integer(), nullable=True),
    sa.Column('needs_review', sa.Boolean(), server_default='false', nullable=False),
    sa.Column('risk_deposit_fen', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('qualification_note', sa.Text(), nullable=True),
    sa.Column('qualified_by', sa.String(length=50), nullable=True),
    sa.Column('registered_on', sa.Date(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("status IN ('registered','qualification','qualified','refused')", name=op.f('ck_market_application_status')),
    sa.CheckConstraint('NOT priority_holder OR member_person_id IS NOT NULL', name=op.f('ck_market_application_priority_is_a_member')),
    sa.CheckConstraint('risk_deposit_fen >= 0', name=op.f('ck_market_application_risk_deposit')),
    sa.ForeignKeyConstraint(['applicant_id'], ['market_applicant.id'], name=op.f('fk_market_application_applicant_id_market_applicant')),
    sa.ForeignKeyConstraint(['listing_id'], ['market_listing.id'], name=op.f('fk_market_application_listing_id_market_listing')),
    sa.ForeignKeyConstraint(['member_person_id'], ['person.id'], name=op.f('fk_market_application_member_person_id_person')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_market_application')),
    sa.UniqueConstraint('listing_id', 'applicant_id', name=op.f('uq_market_application_listing_id'))
    )
    with op.batch_alter_table('market_application', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_market_application_applicant_id'), ['applicant_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_market_application_listing_id'), ['listing_id'], unique=False)

    op.create_table('market_consent',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('listing_id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('how', sa.String(length=8), nullable=False),
    sa.Column('document_sha256', sa.String(length=64), nullable=True),
    sa.Column('recorded_by', sa.String(length=50), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("how = 'online' OR document_sha256 IS NOT NULL", name=op.f('ck_market_consent_document')),
    sa.CheckConstraint("how IN ('online','document')", name=op.f('ck_market_consent_how')),
    sa.ForeignKeyConstraint(['listing_id'], ['market_listing.id'], name=op.f('fk_market_consent_listing_id_market_listing')),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_market_consent_person_id_person')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_market_consent')),
    sa.UniqueConstraint('listing_id', 'person_id', name=op.f('uq_market_consent_listing_id'))
    )
    with op.batch_alter_table('market_consent', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_market_consent_listing_id'), ['listing_id'], unique=False)

    op.create_table('market_encumbrance_consent',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('listing_id', sa.Integer(), nullable=False),
    sa.Column('encumbrance_id', sa.Integer(), nullable=False),
    sa.Column('reference', sa.String(length=200), nullable=False),
    sa.Column('recorded_by', sa.String(length=50), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['encumbrance_id'], ['right_encumbrance.id'], name=op.f('fk_market_encumbrance_consent_encumbrance_id_right_encumbrance')),
    sa.ForeignKeyConstraint(['listing_id'], ['market_listing.id'], name=op.f('fk_market_encumbrance_consent_listing_id_market_listing')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_market_encumbrance_consent')),
    sa.UniqueConstraint('listing_id', 'encumbrance_id', name=op.f('uq_market_encumbrance_consent_listing_id'))
    )
    with op.batch_alter_table('market_encumbrance_consent', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_market_encumbrance_consent_listing_id'), ['listing_id'], unique=False)

    op.create_table('market_listing_parcel',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('listing_id', sa.Integer(), nullable=False),
    sa.Column('parcel_uid', sa.BigInteger(), nullable=False),
    sa.Column('parcel_code', sa.String(length=28), nullable=False),
    sa.Column('area_mu', sa.Numeric(precision=12, scale=2), nullable=False),
    sa.Column('term_start', sa.Date(), nullable=False),
    sa.Column('term_end', sa.Date(), nullable=False),
    sa.Column('live', sa.Boolean(), server_default='false', nullable=False),
    sa.ForeignKeyConstraint(['listing_id'], ['market_listing.id'], name=op.f('fk_market_listing_parcel_listing_id_market_listing')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_market_listing_parcel')),
    sa.UniqueConstraint('listing_id', 'parcel_uid', name=op.f('uq_market_listing_parcel_listing_id'))
    )
    with op.batch_alter_table('market_listing_parcel', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_market_listing_parcel_listing_id'), ['listing_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_market_listing_parcel_parcel_uid'), ['parcel_uid'], unique=False)

    op.create_table('market_ledger_txn',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('listing_id', sa.Integer(), nullable=True),
    sa.Column('application_id', sa.Integer(), nullable=True),
    sa.Column('reference', sa.String(length=100), nullable=False),
    sa.Column('recorded_by', sa.String(length=50), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("kind IN ('deposit_lodged','deposit_refunded','deposit_applied','deposit_forfeited','risk_lodged','risk_refunded')", name=op.f('ck_market_ledger_txn_kind')),
    sa.CheckConstraint('length(trim(reference)) > 0', name=op.f('ck_market_ledger_txn_reference')),
    sa.ForeignKeyConstraint(['application_id'], ['market_application.id'], name=op.f('fk_market_ledger_txn_application_id_market_application')),
    sa.ForeignKeyConstraint(['listing_id'], ['market_listing.id'], name=op.f('fk_market_ledger_txn_listing_id_market_listing')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_market_ledger_txn'))
    )
    with op.batch_alter_table('market_ledger_txn', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_market_ledger_txn_application_id'), ['application_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_market_ledger_txn_listing_id'), ['listing_id'], unique=False)

    op.create_table('market_ledger_entry',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('txn_id', sa.Integer(), nullable=False),
    sa.Column('account', sa.String(length=60), nullable=False),
    sa.Column('amount_fen', sa.BigInteger(), nullable=False),
    sa.CheckConstraint('amount_fen <> 0', name=op.f('ck_market_ledger_entry_nonzero')),
    sa.ForeignKeyConstraint(['txn_id'], ['market_ledger_txn.id'], name=op.f('fk_market_ledger_entry_txn_id_market_ledger_txn')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_market_ledger_entry'))
    )
    with op.batch_alter_table('market_ledger_entry', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_market_ledger_entry_account'), ['account'], unique=False)
        batch_op.create_index(batch_op.f('ix_market_ledger_entry_txn_id'), ['txn_id'], unique=False)

    op.execute(AFTER)


def downgrade():
    op.execute(DROP)
    with op.batch_alter_table('market_ledger_entry', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_market_ledger_entry_txn_id'))
        batch_op.drop_index(batch_op.f('ix_market_ledger_entry_account'))

    op.drop_table('market_ledger_entry')
    with op.batch_alter_table('market_ledger_txn', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_market_ledger_txn_listing_id'))
        batch_op.drop_index(batch_op.f('ix_market_ledger_txn_application_id'))

    op.drop_table('market_ledger_txn')
    with op.batch_alter_table('market_listing_parcel', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_market_listing_parcel_parcel_uid'))
        batch_op.drop_index(batch_op.f('ix_market_listing_parcel_listing_id'))

    op.drop_table('market_listing_parcel')
    with op.batch_alter_table('market_encumbrance_consent', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_market_encumbrance_consent_listing_id'))

    op.drop_table('market_encumbrance_consent')
    with op.batch_alter_table('market_consent', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_market_consent_listing_id'))

    op.drop_table('market_consent')
    with op.batch_alter_table('market_application', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_market_application_listing_id'))
        batch_op.drop_index(batch_op.f('ix_market_application_applicant_id'))

    op.drop_table('market_application')
    with op.batch_alter_table('market_listing', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_market_listing_right_uid'))
        batch_op.drop_index(batch_op.f('ix_market_listing_household_code'))
        batch_op.drop_index(batch_op.f('ix_market_listing_fbfbm'))

    op.drop_table('market_listing')
    with op.batch_alter_table('right_encumbrance', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_right_encumbrance_right_uid'))

    op.drop_table('right_encumbrance')
    with op.batch_alter_table('market_mandate', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_market_mandate_household_code'))

    op.drop_table('market_mandate')
    op.drop_table('market_applicant')
    op.execute("DROP FUNCTION IF EXISTS gb32100_valid(text)")
