"""foundation: divisions, people, households, collectives and membership, users, audit log,
parcels (minimal, for demo data).  Integrity rules that must never break are enforced here too:
the GB 11643 check digit, the closed list of membership-ending grounds, an append-only and
hash-chained audit log.

Revision ID: 0001
Revises: 
Create Date: 2026-11-25 23:44:50.046938

"""
import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

# NY/T 2539 sequence ranges: app.codes is the one definition (a module that never changes meaning)
from app.codes import cbfbm_sequence_sql

# revision identifiers, used by Alembic.
revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


GB11643_FN = r"""
CREATE OR REPLACE FUNCTION gb11643_valid(n text) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
  w int[] := ARRAY[7,9,10,5,8,4,2,1,6,3,7,9,10,5,8,4,2];
  s int := 0;
BEGIN
  IF n !~ '^[0-9]{17}[0-9X]$' THEN RETURN false; END IF;
  BEGIN
    PERFORM to_date(substr(n, 7, 8), 'YYYYMMDD');
    IF to_char(to_date(substr(n, 7, 8), 'YYYYMMDD'), 'YYYYMMDD') <> substr(n, 7, 8) THEN
      RETURN false;
    END IF;
  EXCEPTION WHEN others THEN RETURN false;
  END;
  FOR i IN 1..17 LOOP s := s + substr(n, i, 1)::int * w[i]; END LOOP;
  RETURN substr('10X98765432', (s % 11) + 1, 1) = substr(n, 18, 1);
END $$;
"""

AUDIT_SQL = r"""
CREATE OR REPLACE FUNCTION audit_log_chain() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE last record;
BEGIN
  -- One writer at a time extends the chain; the lock is held until commit, so seq is gapless
  -- and in commit order.
  PERFORM pg_advisory_xact_lock(7243001);
  SELECT seq, hash INTO last FROM audit_log ORDER BY seq DESC LIMIT 1;
  NEW.seq := coalesce(last.seq, 0) + 1;
  NEW.prev_hash := last.hash;
  NEW.at := coalesce(NEW.at, now());
  NEW.hash := encode(sha256(convert_to(
      coalesce(NEW.prev_hash, '') || '|' || NEW.seq || '|' ||
      ((extract(epoch FROM NEW.at) * 1000000)::bigint)::text || '|' ||
      coalesce(NEW.actor_id::text, '') || '|' || NEW.actor_name || '|' || NEW.action || '|' ||
      NEW.object_type || '|' || coalesce(NEW.object_id, '') || '|' || NEW.changes::text || '|' ||
      coalesce(NEW.reason, ''), 'UTF8')), 'hex');
  RETURN NEW;
END $$;
CREATE TRIGGER audit_log_chain BEFORE INSERT ON audit_log
  FOR EACH ROW EXECUTE FUNCTION audit_log_chain();

CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
  FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
"""

MEMBERSHIP_SQL = r"""
CREATE OR REPLACE FUNCTION membership_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    RAISE EXCEPTION 'membership.history: a membership is never deleted; end it on a lawful ground (农村集体经济组织法 art 17)'
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  IF OLD.status = 'ended' THEN
    RAISE EXCEPTION 'membership.history: an ended membership is history and is never rewritten (农村集体经济组织法 art 17)'
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  IF NEW.person_id <> OLD.person_id OR NEW.collective_id <> OLD.collective_id
     OR NEW.began_on <> OLD.began_on OR NEW.basis <> OLD.basis THEN
    RAISE EXCEPTION 'membership.history: who, where, since when and on what basis are fixed; record a new membership instead'
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  IF NEW.status = 'ended' AND coalesce(NEW.end_ground, '') NOT IN ('death','nationality_lost','other_membership','civil_servant','law_or_charter') THEN
    RAISE EXCEPTION 'membership.end.forbidden_ground: membership may not end on ground "%" (农村集体经济组织法 art 17; 乡村振兴促进法 art 55)', NEW.end_ground
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER membership_guard BEFORE UPDATE OR DELETE ON membership
  FOR EACH ROW EXECUTE FUNCTION membership_guard();

CREATE OR REPLACE FUNCTION household_code_in_collective() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM collective c WHERE c.id = NEW.collective_id
                 AND c.fbfbm = substr(NEW.cbfbm, 1, 14)) THEN
    RAISE EXCEPTION 'household.cbfbm: code % does not start with its issuing party''s FBFBM (NY/T 2539-2016)', NEW.cbfbm
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER household_code_in_collective BEFORE INSERT OR UPDATE OF cbfbm, collective_id
  ON household FOR EACH ROW EXECUTE FUNCTION household_code_in_collective();
"""


def upgrade():
    op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    op.execute(GB11643_FN)
    # ### commands auto generated by Alembic - please adjust! ###
    op.create_table('audit_log',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('actor_name', sa.String(length=100), nullable=False),
    sa.Column('action', sa.String(length=80), nullable=False),
    sa.Column('object_type', sa.String(length=40), nullable=False),
    sa.Column('object_id', sa.String(length=64), nullable=True),
    sa.Column('changes', postgresql.JSONB(astext_type=sa.Text()), server_default='{}', nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('prev_hash', sa.String(length=64), nullable=True),
    sa.Column('hash', sa.String(length=64), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log')),
    sa.UniqueConstraint('seq', name=op.f('uq_audit_log_seq'))
    )
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_log_action'), ['action'], unique=False)
        batch_op.create_index('ix_audit_log_object', ['object_type', 'object_id'], unique=False)

    op.create_table('division',
    sa.Column('code', sa.String(length=12), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('level', sa.String(length=10), nullable=False),
    sa.Column('parent_code', sa.String(length=12), nullable=True),
    sa.Column('valid_from', sa.Date(), nullable=True),
    sa.Column('valid_to', sa.Date(), nullable=True),
    sa.Column('successor_code', sa.String(length=12), nullable=True),
    sa.CheckConstraint("(level IN ('province','city','county') AND length(code) = 6) OR (level = 'township' AND length(code) = 9) OR (level = 'village' AND length(code) = 12)", name=op.f('ck_division_level_matches_length')),
    sa.CheckConstraint("code ~ '^([0-9]{6}|[0-9]{9}|[0-9]{12})$'", name=op.f('ck_division_code_format')),
    sa.CheckConstraint("level IN ('province','city','county','township','village')", name=op.f('ck_division_level')),
    sa.ForeignKeyConstraint(['parent_code'], ['division.code'], name=op.f('fk_division_parent_code_division')),
    sa.ForeignKeyConstraint(['successor_code'], ['division.code'], name=op.f('fk_division_successor_code_division')),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_division'))
    )
    with op.batch_alter_table('division', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_division_parent_code'), ['parent_code'], unique=False)

    op.create_table('collective',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('fbfbm', sa.String(length=14), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('village_code', sa.String(length=12), nullable=False),
    sa.Column('leader_name', sa.String(length=50), nullable=True),
    sa.Column('address', sa.String(length=200), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("fbfbm ~ '^[0-9]{14}$'", name=op.f('ck_collective_fbfbm_format')),
    sa.CheckConstraint('substr(fbfbm, 1, 12) = village_code', name=op.f('ck_collective_fbfbm_in_village')),
    sa.ForeignKeyConstraint(['village_code'], ['division.code'], name=op.f('fk_collective_village_code_division')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_collective')),
    sa.UniqueConstraint('fbfbm', name=op.f('uq_collective_fbfbm'))
    )
    with op.batch_alter_table('collective', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_collective_village_code'), ['village_code'], unique=False)

    op.create_table('person',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('id_number', sa.String(length=18), nullable=False),
    sa.Column('name', sa.String(length=50), nullable=False),
    sa.Column('sex', sa.String(length=1), nullable=False),
    sa.Column('birth_date', sa.Date(), nullable=False),
    sa.Column('hukou_division_code', sa.String(length=12), nullable=True),
    sa.Column('hukou_address', sa.String(length=200), nullable=True),
    sa.Column('phone', sa.String(length=20), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("sex IN ('1','2')", name=op.f('ck_person_sex')),
    sa.CheckConstraint('gb11643_valid(id_number)', name=op.f('ck_person_id_number_gb11643')),
    sa.ForeignKeyConstraint(['hukou_division_code'], ['division.code'], name=op.f('fk_person_hukou_division_code_division')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_person')),
    sa.UniqueConstraint('id_number', name=op.f('uq_person_id_number'))
    )
    with op.batch_alter_table('person', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_person_hukou_division_code'), ['hukou_division_code'], unique=False)

    op.create_table('app_user',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=50), nullable=False),
    sa.Column('display_name', sa.String(length=100), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('jurisdiction_code', sa.String(length=14), nullable=True),
    sa.Column('person_id', sa.Integer(), nullable=True),
    sa.Column('household_code', sa.String(length=18), nullable=True),
    sa.Column('active', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('api_token_hash', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('last_login_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("role <> 'farmer' OR person_id IS NOT NULL", name=op.f('ck_app_user_farmer_is_a_person')),
    sa.CheckConstraint("role IN ('farmer','admin') OR jurisdiction_code IS NOT NULL", name=op.f('ck_app_user_staff_have_jurisdiction')),
    sa.CheckConstraint("role IN ('farmer','collective_officer','bureau_staff','exchange_operator','hukou_officer','auditor','admin')", name=op.f('ck_app_user_role')),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_app_user_person_id_person')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_app_user')),
    sa.UniqueConstraint('api_token_hash', name=op.f('uq_app_user_api_token_hash')),
    sa.UniqueConstraint('username', name=op.f('uq_app_user_username'))
    )
    op.create_table('household',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('cbfbm', sa.String(length=18), nullable=False),
    sa.Column('collective_id', sa.Integer(), nullable=False),
    sa.Column('cbflx', sa.String(length=1), server_default='1', nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('head_person_id', sa.Integer(), nullable=True),
    sa.Column('address', sa.String(length=200), nullable=True),
    sa.Column('phone', sa.String(length=20), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('ended_on', sa.Date(), nullable=True),
    sa.CheckConstraint(cbfbm_sequence_sql("cbfbm", "cbflx"), name=op.f('ck_household_cbfbm_sequence_matches_type')),
    sa.CheckConstraint("cbfbm ~ '^[0-9]{18}$'", name=op.f('ck_household_cbfbm_format')),
    sa.CheckConstraint("cbflx IN ('1','2','3')", name=op.f('ck_household_cbflx')),
    sa.ForeignKeyConstraint(['collective_id'], ['collective.id'], name=op.f('fk_household_collective_id_collective')),
    sa.ForeignKeyConstraint(['head_person_id'], ['person.id'], name=op.f('fk_household_head_person_id_person')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_household')),
    sa.UniqueConstraint('cbfbm', name=op.f('uq_household_cbfbm'))
    )
    with op.batch_alter_table('household', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_household_collective_id'), ['collective_id'], unique=False)

    op.create_table('membership',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('collective_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=10), server_default='active', nullable=False),
    sa.Column('began_on', sa.Date(), nullable=False),
    sa.Column('basis', sa.String(length=20), nullable=False),
    sa.Column('confirmed_on', sa.Date(), nullable=True),
    sa.Column('ended_on', sa.Date(), nullable=True),
    sa.Column('end_ground', sa.String(length=20), nullable=True),
    sa.Column('end_note', sa.Text(), nullable=True),
    sa.Column('rights_kept_until', sa.Date(), nullable=True),
    sa.CheckConstraint("(status = 'active' AND ended_on IS NULL AND end_ground IS NULL) OR (status = 'ended' AND ended_on IS NOT NULL AND end_ground IN ('death','nationality_lost','other_membership','civil_servant','law_or_charter'))", name=op.f('ck_membership_end_only_on_lawful_ground')),
    sa.CheckConstraint("basis IN ('original','birth','marriage','adoption','resettlement','assembly_decision')", name=op.f('ck_membership_basis')),
    sa.CheckConstraint("end_ground <> 'law_or_charter' OR length(trim(end_note)) > 0", name=op.f('ck_membership_charter_ground_cites_basis')),
    sa.CheckConstraint("status IN ('active','ended')", name=op.f('ck_membership_status')),
    sa.CheckConstraint('ended_on IS NULL OR ended_on >= began_on', name=op.f('ck_membership_dates')),
    sa.ForeignKeyConstraint(['collective_id'], ['collective.id'], name=op.f('fk_membership_collective_id_collective')),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_membership_person_id_person')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_membership'))
    )
    with op.batch_alter_table('membership', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_membership_collective_id'), ['collective_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_membership_person_id'), ['person_id'], unique=False)
        batch_op.create_index('uq_membership_active', ['person_id', 'collective_id'], unique=True, postgresql_where=sa.text("status = 'active'"))

    op.create_geospatial_table('parcel',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('code', sa.String(length=28), nullable=False),
    sa.Column('collective_id', sa.Integer(), nullable=False),
    sa.Column('household_code', sa.String(length=18), nullable=True),
    sa.Column('name', sa.String(length=50), nullable=True),
    sa.Column('syqxz', sa.String(length=2), nullable=True),
    sa.Column('dklb', sa.String(length=2), nullable=True),
    sa.Column('tdlylx', sa.String(length=3), nullable=True),
    sa.Column('dldj', sa.String(length=2), nullable=True),
    sa.Column('tdyt', sa.String(length=1), nullable=True),
    sa.Column('sfjbnt', sa.String(length=1), nullable=True),
    sa.Column('scmj', sa.Numeric(precision=14, scale=2), nullable=False),
    sa.Column('scmjm', sa.Numeric(precision=12, scale=2), nullable=False),
    sa.Column('east', sa.String(length=50), nullable=True),
    sa.Column('south', sa.String(length=50), nullable=True),
    sa.Column('west', sa.String(length=50), nullable=True),
    sa.Column('north', sa.String(length=50), nullable=True),
    sa.Column('witness', sa.String(length=50), nullable=True),
    sa.Column('remarks', sa.String(length=254), nullable=True),
    sa.Column('survey_srid', sa.Integer(), nullable=False),
    sa.Column('geom', Geometry(geometry_type='MULTIPOLYGON', srid=4490, dimension=2, spatial_index=False, from_text='ST_GeomFromEWKT', name='geometry', nullable=False), nullable=False),
    sa.Column('version', sa.Integer(), server_default='1', nullable=False),
    sa.Column('begin_lifespan', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('end_lifespan', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("(kind = 'contract' AND code ~ '^[0-9]{19}$') OR (kind = 'homestead' AND code ~ '^[0-9]{12}[GJZ][A-Z][0-9]{5}[FLQW][0-9]{8}$')", name=op.f('ck_parcel_code_format')),
    sa.CheckConstraint("kind IN ('contract','homestead')", name=op.f('ck_parcel_kind')),
    sa.CheckConstraint('end_lifespan IS NULL OR end_lifespan > begin_lifespan', name=op.f('ck_parcel_lifespan')),
    sa.CheckConstraint('scmj > 0', name=op.f('ck_parcel_area_positive')),
    sa.ForeignKeyConstraint(['collective_id'], ['collective.id'], name=op.f('fk_parcel_collective_id_collective')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_parcel'))
    )
    with op.batch_alter_table('parcel', schema=None) as batch_op:
        batch_op.create_geospatial_index('idx_parcel_geom', ['geom'], unique=False, postgresql_using='gist', postgresql_ops={})
        batch_op.create_index(batch_op.f('ix_parcel_collective_id'), ['collective_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_parcel_household_code'), ['household_code'], unique=False)
        batch_op.create_index('uq_parcel_current_code', ['code'], unique=True, postgresql_where=sa.text('end_lifespan IS NULL'))

    op.create_table('household_member',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('household_id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('relation', sa.String(length=2), nullable=False),
    sa.Column('is_coholder', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('remark', sa.String(length=1), nullable=True),
    sa.Column('joined_on', sa.Date(), nullable=True),
    sa.Column('left_on', sa.Date(), nullable=True),
    sa.CheckConstraint("relation IN ('01','02','10','11','12','20','30','51','52','97','99')", name=op.f('ck_household_member_relation')),
    sa.CheckConstraint("remark IS NULL OR remark IN ('1','2','3','4','5','6','7','9')", name=op.f('ck_household_member_remark')),
    sa.ForeignKeyConstraint(['household_id'], ['household.id'], name=op.f('fk_household_member_household_id_household')),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_household_member_person_id_person')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_household_member'))
    )
    with op.batch_alter_table('household_member', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_household_member_household_id'), ['household_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_household_member_person_id'), ['person_id'], unique=False)
        batch_op.create_index('uq_household_member_current', ['household_id', 'person_id'], unique=True, postgresql_where=sa.text('left_on IS NULL'))

    # ### end Alembic commands ###

    op.execute(AUDIT_SQL)
    op.execute(MEMBERSHIP_SQL)


def downgrade():
    # ### commands auto generated by Alembic - please adjust! ###
    with op.batch_alter_table('household_member', schema=None) as batch_op:
        batch_op.drop_index('uq_household_member_current', postgresql_where=sa.text('left_on IS NULL'))
        batch_op.drop_index(batch_op.f('ix_household_member_person_id'))
        batch_op.drop_index(batch_op.f('ix_household_member_household_id'))

    op.drop_table('household_member')
    with op.batch_alter_table('parcel', schema=None) as batch_op:
        batch_op.drop_index('uq_parcel_current_code', postgresql_where=sa.text('end_lifespan IS NULL'))
        batch_op.drop_index(batch_op.f('ix_parcel_household_code'))
        batch_op.drop_index(batch_op.f('ix_parcel_collective_id'))
        batch_op.drop_geospatial_index('idx_parcel_geom', postgresql_using='gist', column_name='geom')

    op.drop_geospatial_table('parcel')
    with op.batch_alter_table('membership', schema=None) as batch_op:
        batch_op.drop_index('uq_membership_active', postgresql_where=sa.text("status = 'active'"))
        batch_op.drop_index(batch_op.f('ix_membership_person_id'))
        batch_op.drop_index(batch_op.f('ix_membership_collective_id'))

    op.drop_table('membership')
    with op.batch_alter_table('household', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_household_collective_id'))

    op.drop_table('household')
    op.drop_table('app_user')
    with op.batch_alter_table('person', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_person_hukou_division_code'))

    op.drop_table('person')
    with op.batch_alter_table('collective', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_collective_village_code'))

    op.drop_table('collective')
    with op.batch_alter_table('division', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_division_parent_code'))

    op.drop_table('division')
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_log_object')
        batch_op.drop_index(batch_op.f('ix_audit_log_action'))

    op.drop_table('audit_log')
    # ### end Alembic commands ###
    op.execute("DROP FUNCTION IF EXISTS audit_log_chain, audit_log_append_only, membership_guard, "
               "household_code_in_collective")
    op.execute("DROP FUNCTION IF EXISTS gb11643_valid")
