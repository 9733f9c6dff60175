"""The transfer-trading market II: the online auction (网络竞价), priority on equal terms and the
award, with the database's own guards:

- a bid is an INSERT into `market_bid`; a BEFORE INSERT trigger takes the auction's row lock
  (so no two bids of one auction interleave), reads the market time *after* the lock
  (`clock_timestamp()`, scaled by the auction's `accelerator` from its `clock_origin`, so tests
  run a whole auction in seconds without sleeping), and refuses a bid before the start, at or
  after the end, of a bidder not admitted, a first bid below the reserve or off its steps, a
  later bid not above the current price by whole steps; it sets the gapless sequence, the
  server timestamps, the bidder's pseudonymous number, the hash chain (sha256 of the previous
  hash and the bid) and, for a bid in the last N minutes of the timed period, the new end
  (bid time + N), and it notifies `market_auction` (LISTEN/NOTIFY) for the live page;
- a retried bid (same client key) is skipped by the trigger under the same lock, so a retry
  never makes a second bid (and a UNIQUE constraint stands behind it);
- bids, bidder numbers and priority exercises are append-only (UPDATE/DELETE refused);
- a priority exercise only by an admitted priority holder, inside the window, once decided.

Revision ID: 0016_market_trading
Revises: 0015_market
"""
from alembic import op

revision = "0016_market_trading"
down_revision = "0015_market"
branch_labels = None
depends_on = None

UP = r"""
CREATE TABLE market_auction (
  id serial PRIMARY KEY,
  listing_id integer NOT NULL CONSTRAINT uq_market_auction_listing_id UNIQUE
    REFERENCES market_listing(id),
  reserve_fen bigint NOT NULL CHECK (reserve_fen >= 0),
  step_fen bigint NOT NULL CHECK (step_fen > 0),
  starts_at timestamptz NOT NULL,
  timed_from timestamptz NOT NULL,
  ends_at timestamptz NOT NULL,
  extension_minutes integer NOT NULL CHECK (extension_minutes > 0),
  clock_origin timestamptz NOT NULL,
  accelerator numeric(12,3) NOT NULL DEFAULT 1 CHECK (accelerator >= 1),
  priority_minutes integer NOT NULL DEFAULT 1440 CHECK (priority_minutes >= 0),
  current_price_fen bigint,
  bid_count integer NOT NULL DEFAULT 0,
  last_hash text NOT NULL DEFAULT repeat('0', 64),
  status varchar(10) NOT NULL DEFAULT 'open'
    CHECK (status IN ('open','priority','closed','no_deal')),
  closed_at timestamptz,
  priority_until timestamptz,
  priority_outcome varchar(10) CHECK (priority_outcome IN ('exercised','lapsed','none')),
  created_by varchar(50) NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  CHECK (timed_from >= starts_at AND ends_at >= timed_from)
);

CREATE TABLE market_auction_bidder (
  id serial PRIMARY KEY,
  auction_id integer NOT NULL REFERENCES market_auction(id),
  application_id integer NOT NULL REFERENCES market_application(id),
  bidder_no integer NOT NULL CHECK (bidder_no > 0),
  priority_holder boolean NOT NULL DEFAULT false,
  CONSTRAINT uq_market_auction_bidder_application UNIQUE (auction_id, application_id),
  CONSTRAINT uq_market_auction_bidder_no UNIQUE (auction_id, bidder_no)
);

CREATE TABLE market_bid (
  id bigserial PRIMARY KEY,
  auction_id integer NOT NULL REFERENCES market_auction(id),
  application_id integer NOT NULL REFERENCES market_application(id),
  client_key varchar(64) NOT NULL CHECK (length(client_key) BETWEEN 8 AND 64),
  amount_fen bigint NOT NULL CHECK (amount_fen > 0),
  seq integer NOT NULL,
  bidder_no integer NOT NULL,
  real_at timestamptz NOT NULL,
  market_at timestamptz NOT NULL,
  ends_before timestamptz NOT NULL,
  ends_after timestamptz NOT NULL,
  prev_hash text NOT NULL,
  hash text NOT NULL,
  CONSTRAINT uq_market_bid_seq UNIQUE (auction_id, seq),
  CONSTRAINT uq_market_bid_client_key UNIQUE (auction_id, client_key)
);

CREATE TABLE market_priority_exercise (
  id serial PRIMARY KEY,
  auction_id integer NOT NULL REFERENCES market_auction(id),
  application_id integer NOT NULL REFERENCES market_application(id),
  price_fen bigint NOT NULL,
  real_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  market_at timestamptz,
  CONSTRAINT uq_market_priority_exercise_once UNIQUE (auction_id, application_id)
);

CREATE TABLE market_award (
  id serial PRIMARY KEY,
  listing_id integer NOT NULL REFERENCES market_listing(id),
  auction_id integer REFERENCES market_auction(id),
  application_id integer NOT NULL REFERENCES market_application(id),
  method varchar(12) NOT NULL
    CHECK (method IN ('auction','priority','tender','agreement','negotiation','next_ranked')),
  rank integer NOT NULL DEFAULT 1,
  price_fen bigint NOT NULL CHECK (price_fen > 0),
  notice_on date NOT NULL,
  pay_by date NOT NULL,
  sign_by date NOT NULL,
  status varchar(10) NOT NULL DEFAULT 'pending'
    CHECK (status IN ('pending','paid','signed','forfeited')),
  paid_on date,
  forfeited_on date,
  seller_agreed_ref varchar(200),
  created_by varchar(50) NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX market_award_one_standing ON market_award (listing_id)
  WHERE status <> 'forfeited';

-- The market's time of an auction: the server clock, accelerated from the auction's origin.
CREATE FUNCTION market_auction_now(a market_auction) RETURNS timestamptz
LANGUAGE sql VOLATILE AS $$
  SELECT a.clock_origin + (clock_timestamp() - a.clock_origin) * a.accelerator
$$;

CREATE FUNCTION market_bid_accept() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  a market_auction;
  b market_auction_bidder;
  t timestamptz;
  n interval;
BEGIN
  -- The auction's row lock: every bid of this auction passes here one at a time.
  SELECT * INTO a FROM market_auction WHERE id = NEW.auction_id FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'market.bid.no_auction' USING ERRCODE = 'P0001';
  END IF;
  -- A retry of a bid already made (same client key): skip it, silently, under the lock.
  IF EXISTS (SELECT 1 FROM market_bid WHERE auction_id = a.id AND client_key = NEW.client_key) THEN
    RETURN NULL;
  END IF;
  SELECT * INTO b FROM market_auction_bidder
   WHERE auction_id = a.id AND application_id = NEW.application_id;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'market.bid.not_admitted' USING ERRCODE = 'P0001';
  END IF;
  t := market_auction_now(a);  -- read after the lock was granted
  IF a.status <> 'open' OR t >= a.ends_at THEN
    RAISE EXCEPTION 'market.bid.ended' USING ERRCODE = 'P0001';
  END IF;
  IF t < a.starts_at THEN
    RAISE EXCEPTION 'market.bid.not_started' USING ERRCODE = 'P0001';
  END IF;
  IF a.current_price_fen IS NULL THEN
    IF NEW.amount_fen < a.reserve_fen OR (NEW.amount_fen - a.reserve_fen) % a.step_fen <> 0 THEN
      RAISE EXCEPTION 'market.bid.first' USING ERRCODE = 'P0001',
        DETAIL = a.reserve_fen::text;
    END IF;
  ELSIF NEW.amount_fen <= a.current_price_fen
        OR (NEW.amount_fen - a.current_price_fen) % a.step_fen <> 0 THEN
    RAISE EXCEPTION 'market.bid.step' USING ERRCODE = 'P0001',
      DETAIL = a.current_price_fen::text;
  END IF;
  n := make_interval(mins => a.extension_minutes);
  NEW.seq := a.bid_count + 1;
  NEW.bidder_no := b.bidder_no;
  NEW.real_at := clock_timestamp();
  NEW.market_at := t;
  NEW.ends_before := a.ends_at;
  NEW.ends_after := CASE WHEN t >= a.timed_from AND t > a.ends_at - n THEN t + n
                         ELSE a.ends_at END;
  NEW.prev_hash := a.last_hash;
  NEW.hash := encode(sha256(convert_to(concat_ws('|', a.last_hash, a.id, NEW.seq,
      NEW.application_id, NEW.amount_fen, NEW.client_key,
      to_char(NEW.market_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'),
      to_char(NEW.real_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US')), 'UTF8')), 'hex');
  UPDATE market_auction SET current_price_fen = NEW.amount_fen, bid_count = NEW.seq,
         last_hash = NEW.hash, ends_at = NEW.ends_after WHERE id = a.id;
  PERFORM pg_notify('market_auction', json_build_object(
      'auction', a.id, 'seq', NEW.seq, 'bidder', NEW.bidder_no, 'amount_fen', NEW.amount_fen,
      'at', NEW.market_at, 'ends_at', NEW.ends_after)::text);
  RETURN NEW;
END $$;
CREATE TRIGGER market_bid_accept BEFORE INSERT ON market_bid
  FOR EACH ROW EXECUTE FUNCTION market_bid_accept();

CREATE TRIGGER market_bid_append_only BEFORE UPDATE OR DELETE ON market_bid
  FOR EACH ROW EXECUTE FUNCTION market_append_only();
CREATE TRIGGER market_auction_bidder_append_only BEFORE UPDATE OR DELETE ON market_auction_bidder
  FOR EACH ROW EXECUTE FUNCTION market_append_only();
CREATE TRIGGER market_priority_append_only BEFORE UPDATE OR DELETE ON market_priority_exercise
  FOR EACH ROW EXECUTE FUNCTION market_append_only();

-- The auction's price, count, hash and end move only with its bids; its result only once.
CREATE FUNCTION market_auction_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF pg_trigger_depth() = 1 AND (NEW.current_price_fen IS DISTINCT FROM OLD.current_price_fen
      OR NEW.bid_count <> OLD.bid_count OR NEW.last_hash <> OLD.last_hash
      OR NEW.ends_at <> OLD.ends_at OR NEW.reserve_fen <> OLD.reserve_fen
      OR NEW.step_fen <> OLD.step_fen OR NEW.starts_at <> OLD.starts_at
      OR NEW.timed_from <> OLD.timed_from OR NEW.accelerator <> OLD.accelerator
      OR NEW.clock_origin <> OLD.clock_origin) THEN
    RAISE EXCEPTION 'market.auction.fixed: an auction''s terms and price move only with its bids';
  END IF;
  IF OLD.status = 'open' AND NEW.status <> 'open'
     AND market_auction_now(NEW) < NEW.ends_at THEN
    RAISE EXCEPTION 'market.auction.running: the auction has not ended';
  END IF;
  IF OLD.status IN ('closed','no_deal') AND NEW.status <> OLD.status THEN
    RAISE EXCEPTION 'market.auction.decided: a decided auction is not reopened';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER market_auction_guard BEFORE UPDATE ON market_auction
  FOR EACH ROW EXECUTE FUNCTION market_auction_guard();
CREATE TRIGGER market_auction_no_delete BEFORE DELETE ON market_auction
  FOR EACH ROW EXECUTE FUNCTION market_append_only();

CREATE FUNCTION market_priority_check() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE a market_auction; t timestamptz;
BEGIN
  SELECT * INTO a FROM market_auction WHERE id = NEW.auction_id FOR UPDATE;
  t := market_auction_now(a);
  IF a.status <> 'priority' OR t >= a.priority_until THEN
    RAISE EXCEPTION 'market.priority.window' USING ERRCODE = 'P0001';
  END IF;
  IF NOT EXISTS (SELECT 1 FROM market_auction_bidder WHERE auction_id = a.id
                 AND application_id = NEW.application_id AND priority_holder) THEN
    RAISE EXCEPTION 'market.priority.not_holder' USING ERRCODE = 'P0001';
  END IF;
  IF NEW.price_fen <> a.current_price_fen THEN
    RAISE EXCEPTION 'market.priority.price' USING ERRCODE = 'P0001';
  END IF;
  NEW.real_at := clock_timestamp();
  NEW.market_at := t;
  RETURN NEW;
END $$;
CREATE TRIGGER market_priority_check BEFORE INSERT ON market_priority_exercise
  FOR EACH ROW EXECUTE FUNCTION market_priority_check();

ALTER TABLE market_ledger_txn DROP CONSTRAINT ck_market_ledger_txn_kind;
ALTER TABLE market_ledger_txn ADD CONSTRAINT ck_market_ledger_txn_kind CHECK (kind IN
  ('deposit_lodged','deposit_refunded','deposit_applied','deposit_forfeited','risk_lodged','risk_refunded',
   'price_paid','price_paid_out','rent_received','rent_paid_out'));

-- The contract (art 40), its confirmations, its filing with the issuing party (the transfers
-- ledger of the collective), the management right it registers, the transaction certificate,
-- the rent schedule and the end of a transfer on art 42 grounds only.
CREATE TABLE market_contract (
  id serial PRIMARY KEY,
  award_id integer NOT NULL CONSTRAINT uq_market_contract_award_id UNIQUE
    REFERENCES market_award(id),
  listing_id integer NOT NULL REFERENCES market_listing(id),
  number varchar(40) NOT NULL CONSTRAINT uq_market_contract_number UNIQUE,
  model varchar(20) NOT NULL CHECK (model IN ('GF—2021—2606','GF—2021—2607')),
  fbfbm varchar(14) NOT NULL,
  transferee_application_id integer NOT NULL REFERENCES market_application(id),
  transferee_name varchar(100) NOT NULL,
  transferee_person_id integer REFERENCES person(id),
  annual_rent_fen bigint NOT NULL CHECK (annual_rent_fen > 0),
  term_start date NOT NULL,
  term_end date NOT NULL CHECK (term_end > term_start),
  content jsonb NOT NULL,
  pdf bytea NOT NULL,
  pdf_sha256 varchar(64) NOT NULL,
  status varchar(12) NOT NULL DEFAULT 'draft'
    CHECK (status IN ('draft','confirmed','filed','terminated')),
  filed_at timestamptz,
  filed_by varchar(50),
  management_right_uid bigint,
  terminated_on date,
  termination_ground varchar(20)
    CHECK (termination_ground IN ('use_changed','abandoned','serious_damage','serious_breach')),
  termination_evidence text,
  termination_evidence_sha256 varchar(64),
  terminated_by varchar(50),
  created_by varchar(50) NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  CHECK (pdf_sha256 = encode(sha256(pdf), 'hex')),
  CHECK ((status = 'filed' OR status = 'terminated') = (filed_at IS NOT NULL)),
  CHECK ((status = 'terminated') = (terminated_on IS NOT NULL AND termination_ground IS NOT NULL
         AND length(trim(coalesce(termination_evidence, ''))) > 0
         AND termination_evidence_sha256 IS NOT NULL AND terminated_by IS NOT NULL))
);
CREATE INDEX ix_market_contract_fbfbm ON market_contract (fbfbm);

CREATE TABLE market_contract_confirmation (
  id serial PRIMARY KEY,
  contract_id integer NOT NULL REFERENCES market_contract(id),
  party varchar(12) NOT NULL CHECK (party IN ('transferor','transferee')),
  confirmed_by varchar(100) NOT NULL,
  pdf_sha256 varchar(64) NOT NULL,
  at timestamptz NOT NULL DEFAULT clock_timestamp(),
  CONSTRAINT uq_market_contract_confirmation_party UNIQUE (contract_id, party)
);

CREATE TABLE market_trade_certificate (
  id serial PRIMARY KEY,
  contract_id integer NOT NULL CONSTRAINT uq_market_trade_certificate_contract_id UNIQUE
    REFERENCES market_contract(id),
  number varchar(40) NOT NULL CONSTRAINT uq_market_trade_certificate_number UNIQUE,
  token varchar(32) NOT NULL CONSTRAINT uq_market_trade_certificate_token UNIQUE,
  content jsonb NOT NULL,
  content_sha256 varchar(64) NOT NULL,
  status varchar(10) NOT NULL DEFAULT 'valid' CHECK (status IN ('valid','cancelled')),
  issued_by varchar(50) NOT NULL,
  issued_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  cancelled_reason text
);

CREATE TABLE market_rent_instalment (
  id serial PRIMARY KEY,
  contract_id integer NOT NULL REFERENCES market_contract(id),
  no integer NOT NULL CHECK (no > 0),
  due_on date NOT NULL,
  amount_fen bigint NOT NULL CHECK (amount_fen > 0),
  CONSTRAINT uq_market_rent_instalment_no UNIQUE (contract_id, no)
);

-- A contract's terms and PDF are fixed; it moves draft → confirmed → filed → terminated only.
CREATE FUNCTION market_contract_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    RAISE EXCEPTION 'market.contract.history: a contract is never deleted';
  END IF;
  IF (to_jsonb(NEW) - 'status' - 'filed_at' - 'filed_by' - 'management_right_uid'
      - 'terminated_on' - 'termination_ground' - 'termination_evidence'
      - 'termination_evidence_sha256' - 'terminated_by')
     <> (to_jsonb(OLD) - 'status' - 'filed_at' - 'filed_by' - 'management_right_uid'
      - 'terminated_on' - 'termination_ground' - 'termination_evidence'
      - 'termination_evidence_sha256' - 'terminated_by') THEN
    RAISE EXCEPTION 'market.contract.fixed: the contract''s terms and PDF are fixed';
  END IF;
  IF OLD.status = 'terminated' OR (OLD.status = NEW.status AND
      (NEW.filed_at IS DISTINCT FROM OLD.filed_at
       OR (OLD.management_right_uid IS NOT NULL
           AND NEW.management_right_uid IS DISTINCT FROM OLD.management_right_uid))) THEN
    RAISE EXCEPTION 'market.contract.fixed: a filed or terminated contract is history';
  END IF;
  IF NEW.status <> OLD.status AND NOT (
       (OLD.status = 'draft' AND NEW.status = 'confirmed'
        AND (SELECT count(*) FROM market_contract_confirmation c
             WHERE c.contract_id = NEW.id AND c.pdf_sha256 = NEW.pdf_sha256) = 2)
    OR (OLD.status = 'confirmed' AND NEW.status = 'filed')
    OR (OLD.status = 'filed' AND NEW.status = 'terminated')) THEN
    RAISE EXCEPTION 'market.contract.state: % → % refused (confirmed by both parties, then filed; ended only on an art 42 ground)', OLD.status, NEW.status;
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER market_contract_guard BEFORE UPDATE OR DELETE ON market_contract
  FOR EACH ROW EXECUTE FUNCTION market_contract_guard();

CREATE FUNCTION market_confirmation_check() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.pdf_sha256 <> (SELECT pdf_sha256 FROM market_contract WHERE id = NEW.contract_id) THEN
    RAISE EXCEPTION 'market.contract.digest: the confirmation names another PDF';
  END IF;
  NEW.at := clock_timestamp();
  RETURN NEW;
END $$;
CREATE TRIGGER market_confirmation_check BEFORE INSERT ON market_contract_confirmation
  FOR EACH ROW EXECUTE FUNCTION market_confirmation_check();
CREATE TRIGGER market_confirmation_append_only BEFORE UPDATE OR DELETE
  ON market_contract_confirmation FOR EACH ROW EXECUTE FUNCTION market_append_only();
CREATE TRIGGER market_rent_append_only BEFORE UPDATE OR DELETE
  ON market_rent_instalment FOR EACH ROW EXECUTE FUNCTION market_append_only();

CREATE FUNCTION market_trade_certificate_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' OR (to_jsonb(NEW) - 'status' - 'cancelled_reason')
     <> (to_jsonb(OLD) - 'status' - 'cancelled_reason') OR OLD.status = 'cancelled'
     OR (NEW.status = 'cancelled' AND length(trim(coalesce(NEW.cancelled_reason, ''))) = 0) THEN
    RAISE EXCEPTION 'market.certificate.fixed: a transaction certificate is only ever cancelled, with a reason';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER market_trade_certificate_guard BEFORE UPDATE OR DELETE
  ON market_trade_certificate FOR EACH ROW EXECUTE FUNCTION market_trade_certificate_guard();

-- A management right may also end when its transfer is terminated on an art 42 ground: only a
-- management right, and only when its contract records that termination.
ALTER TABLE land_right DROP CONSTRAINT ck_land_right_end_only_on_lawful_ground;
ALTER TABLE land_right ADD CONSTRAINT ck_land_right_end_only_on_lawful_ground CHECK (
  (status = 'current' AND end_ground IS NULL AND ended_on IS NULL)
  OR (status = 'ended' AND ended_on IS NOT NULL AND (end_ground IN ('expiry',
      'voluntary_withdrawal','expropriation','court_judgment','mutation','holder_extinct')
      OR (kind = 'management' AND end_ground = 'transfer_terminated'))));

-- 0012's guard and proof of a right's end (this migration's copy of their text), with one
-- more ground: a management right ends with its transfer terminated on an art 42 ground.
CREATE OR REPLACE FUNCTION land_right_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    RAISE EXCEPTION 'right.history: a right is never deleted; it ends on a lawful ground'
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  IF OLD.status = 'ended' OR OLD.end_lifespan IS NOT NULL THEN
    RAISE EXCEPTION 'right.history: an ended or superseded right is history and is never rewritten'
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  IF NEW.status = 'ended' AND coalesce(NEW.end_ground, '') NOT IN
     ('expiry','voluntary_withdrawal','expropriation','court_judgment','mutation','holder_extinct')
     AND NOT (NEW.kind = 'management' AND NEW.end_ground = 'transfer_terminated') THEN
    RAISE EXCEPTION 'right.end.forbidden_ground: a right may not end on ground "%"; settling in town is never a ground (农村土地承包法 art 27; 乡村振兴促进法 art 55)', NEW.end_ground
      USING ERRCODE = 'check_violation';
  END IF;
  IF (to_jsonb(NEW) - 'status' - 'end_ground' - 'end_evidence' - 'ended_on' - 'end_lifespan' - 'end_record_id')
     <> (to_jsonb(OLD) - 'status' - 'end_ground' - 'end_evidence' - 'ended_on' - 'end_lifespan' - 'end_record_id') THEN
    RAISE EXCEPTION 'right.history: a right changes by a new version, never in place'
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  IF NEW.status = 'current' AND NEW.end_record_id IS NOT NULL THEN
    RAISE EXCEPTION 'right.history: a current right carries no end record'
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  IF NEW.status = 'ended' AND NEW.end_lifespan IS NOT NULL THEN
    RAISE EXCEPTION 'right.end.silent: a right ends by its recorded end, not by also closing its lifespan'
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  RETURN NEW;
END $$;
CREATE OR REPLACE FUNCTION land_right_end_proof(r land_right) RETURNS void LANGUAGE plpgsql AS $$
DECLARE hh record;
BEGIN
  CASE r.end_ground
  WHEN 'expiry' THEN
    IF r.term_end IS NULL OR r.ended_on < r.term_end OR r.term_end > current_date THEN
      RAISE EXCEPTION 'right.end.not_expired: right % runs until %; it ends on expiry only at or after the term end (农村土地承包法 art 21, 27)', r.uid, r.term_end
        USING ERRCODE = 'check_violation';
    END IF;
  WHEN 'holder_extinct' THEN
    SELECT ended_on, end_ground INTO hh FROM household WHERE cbfbm = r.holder_household_code;
    IF hh.ended_on IS NULL OR hh.end_ground IS NULL THEN
      RAISE EXCEPTION 'right.end.evidence: household % has not ended on a lawful ground of its own; its right does not end as "holder extinct" (农村土地承包法 art 27; 乡村振兴促进法 art 55)', r.holder_household_code
        USING ERRCODE = 'check_violation';
    END IF;
  WHEN 'mutation' THEN
    IF r.end_record_id IS NULL OR NOT EXISTS (
        SELECT 1 FROM parcel_lineage l JOIN parcel p ON p.id IN (l.parent_id, l.child_id)
        JOIN land_right_parcel rp ON rp.parcel_uid = p.uid AND rp.right_id = r.id
        WHERE l.mutation_id = r.end_record_id) THEN
      RAISE EXCEPTION 'right.end.evidence: right % ends on a mutation only with the parcel mutation that changed its parcels (农村土地承包法 art 27)', r.uid
        USING ERRCODE = 'check_violation';
    END IF;
  WHEN 'court_judgment' THEN
    IF r.end_record_id IS NULL OR NOT EXISTS (
        SELECT 1 FROM court_judgment j WHERE j.id = r.end_record_id AND j.right_uid = r.uid
          AND j.judged_on <= r.ended_on) THEN
      RAISE EXCEPTION 'right.end.evidence: right % ends on a court judgment only with the judgment recorded (court, case number, date, file) (农村土地承包法 art 27)', r.uid
        USING ERRCODE = 'check_violation';
    END IF;
  WHEN 'expropriation' THEN
    IF r.end_record_id IS NULL OR NOT EXISTS (
        SELECT 1 FROM expropriation x WHERE x.id = r.end_record_id AND x.right_uid = r.uid
          AND x.compensation > 0) THEN
      RAISE EXCEPTION 'right.end.evidence: right % ends on expropriation only with the expropriation and its compensation recorded (土地管理法 art 48; 农村土地承包法 art 27)', r.uid
        USING ERRCODE = 'check_violation';
    END IF;
  WHEN 'voluntary_withdrawal' THEN
    IF r.end_record_id IS NULL OR NOT EXISTS (
        SELECT 1 FROM withdrawal w WHERE w.id = r.end_record_id AND w.right_uid = r.uid
          AND w.status = 'effective' AND w.effective_on <= r.ended_on) THEN
      RAISE EXCEPTION 'right.end.withdrawal_not_effective: right % ends on voluntary withdrawal only when a withdrawal of it has taken effect (农村土地承包法 art 27; 乡村振兴促进法 art 55)', r.uid
        USING ERRCODE = 'check_violation';
    END IF;
  WHEN 'transfer_terminated' THEN
    IF r.kind <> 'management' OR NOT EXISTS (SELECT 1 FROM market_contract c
        WHERE c.management_right_uid = r.uid AND c.status = 'terminated') THEN
      RAISE EXCEPTION 'right.end.forbidden_ground: only a management right ends with its transfer, and only when the transfer was terminated on an art 42 ground (农村土地承包法 art 42)'
        USING ERRCODE = 'check_violation';
    END IF;
  END CASE;
END $$;

-- The tender (招标): sealed bids.  At lodging only a commitment is stored — sha256 of
-- "price_fen|nonce|plan" computed by the bidder — so nobody, the operator included, can read a
-- price before the opening; at the opening each bidder reveals price, nonce and plan, and the
-- database accepts the reveal only after the opening time and only if it matches.
CREATE TABLE market_tender (
  id serial PRIMARY KEY,
  listing_id integer NOT NULL CONSTRAINT uq_market_tender_listing_id UNIQUE
    REFERENCES market_listing(id),
  reserve_fen bigint NOT NULL,
  lodging_ends_at timestamptz NOT NULL,
  opens_at timestamptz NOT NULL,
  reveal_ends_at timestamptz NOT NULL,
  clock_origin timestamptz NOT NULL,
  accelerator numeric(12,3) NOT NULL DEFAULT 1 CHECK (accelerator >= 1),
  weight_price integer NOT NULL CHECK (weight_price BETWEEN 0 AND 100),
  weight_plan integer NOT NULL CHECK (weight_plan BETWEEN 0 AND 100),
  status varchar(8) NOT NULL DEFAULT 'open' CHECK (status IN ('open','decided')),
  created_by varchar(50) NOT NULL,
  CHECK (weight_price + weight_plan = 100 AND weight_price > 0),
  CHECK (opens_at >= lodging_ends_at AND reveal_ends_at > opens_at)
);
CREATE FUNCTION market_tender_now(t market_tender) RETURNS timestamptz
LANGUAGE sql VOLATILE AS $$
  SELECT t.clock_origin + (clock_timestamp() - t.clock_origin) * t.accelerator
$$;
CREATE TABLE market_tender_bid (
  id serial PRIMARY KEY,
  tender_id integer NOT NULL REFERENCES market_tender(id),
  application_id integer NOT NULL REFERENCES market_application(id),
  commitment varchar(64) NOT NULL CHECK (commitment ~ '^[0-9a-f]{64}$'),
  lodged_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  price_fen bigint,
  nonce varchar(100),
  plan text,
  revealed_at timestamptz,
  plan_score integer CHECK (plan_score BETWEEN 0 AND 100),
  CONSTRAINT uq_market_tender_bid_once UNIQUE (tender_id, application_id),
  CHECK ((price_fen IS NULL) = (revealed_at IS NULL) AND (price_fen IS NULL) = (nonce IS NULL))
);
CREATE FUNCTION market_tender_bid_guard() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE t market_tender; now_ timestamptz;
BEGIN
  IF TG_OP = 'DELETE' THEN
    RAISE EXCEPTION 'market.tender.history: a sealed bid is never deleted';
  END IF;
  SELECT * INTO t FROM market_tender WHERE id = NEW.tender_id FOR UPDATE;
  now_ := market_tender_now(t);
  IF TG_OP = 'INSERT' THEN
    IF now_ >= t.lodging_ends_at OR t.status <> 'open' THEN
      RAISE EXCEPTION 'market.tender.lodging_closed' USING ERRCODE = 'P0001';
    END IF;
    IF NEW.price_fen IS NOT NULL OR NEW.plan IS NOT NULL OR NEW.nonce IS NOT NULL THEN
      RAISE EXCEPTION 'market.tender.sealed: only the commitment is lodged' USING ERRCODE = 'P0001';
    END IF;
    NEW.lodged_at := clock_timestamp();
    RETURN NEW;
  END IF;
  IF NEW.commitment <> OLD.commitment OR NEW.lodged_at <> OLD.lodged_at
     OR NEW.application_id <> OLD.application_id OR NEW.tender_id <> OLD.tender_id THEN
    RAISE EXCEPTION 'market.tender.history: a lodged commitment is fixed';
  END IF;
  IF OLD.price_fen IS NULL AND NEW.price_fen IS NOT NULL THEN
    IF now_ < t.opens_at OR now_ >= t.reveal_ends_at THEN
      RAISE EXCEPTION 'market.tender.not_open' USING ERRCODE = 'P0001';
    END IF;
    IF encode(sha256(convert_to(NEW.price_fen::text || '|' || NEW.nonce || '|' ||
                                coalesce(NEW.plan, ''), 'UTF8')), 'hex') <> NEW.commitment THEN
      RAISE EXCEPTION 'market.tender.mismatch' USING ERRCODE = 'P0001';
    END IF;
    NEW.revealed_at := clock_timestamp();
  ELSIF NEW.price_fen IS DISTINCT FROM OLD.price_fen OR NEW.nonce IS DISTINCT FROM OLD.nonce
        OR NEW.plan IS DISTINCT FROM OLD.plan THEN
    RAISE EXCEPTION 'market.tender.history: a revealed bid is fixed';
  END IF;
  IF NEW.plan_score IS DISTINCT FROM OLD.plan_score AND (NEW.price_fen IS NULL
      OR t.status <> 'open') THEN
    RAISE EXCEPTION 'market.tender.not_open' USING ERRCODE = 'P0001';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER market_tender_bid_guard BEFORE INSERT OR UPDATE OR DELETE ON market_tender_bid
  FOR EACH ROW EXECUTE FUNCTION market_tender_bid_guard();

-- Renewal on equal terms at term end (农村土地经营权流转管理办法 2021 art 10): the transferee of
-- the filed contract that ends before the new term may hold priority like a member.
ALTER TABLE market_application ADD COLUMN renewal_contract_id integer
  CONSTRAINT fk_market_application_renewal_contract_id_market_contract
  REFERENCES market_contract(id);
ALTER TABLE market_application DROP CONSTRAINT ck_market_application_priority_is_a_member;
ALTER TABLE market_application ADD CONSTRAINT ck_market_application_priority_is_a_member
  CHECK (NOT priority_holder OR member_person_id IS NOT NULL OR renewal_contract_id IS NOT NULL);
"""

DOWN = r"""
ALTER TABLE market_application DROP CONSTRAINT ck_market_application_priority_is_a_member;
ALTER TABLE market_application ADD CONSTRAINT ck_market_application_priority_is_a_member
  CHECK (NOT priority_holder OR member_person_id IS NOT NULL);
ALTER TABLE market_application DROP COLUMN renewal_contract_id;
DROP TABLE market_tender_bid;
DROP FUNCTION market_tender_bid_guard();
DROP FUNCTION market_tender_now(market_tender);
DROP TABLE market_tender;
-- 0012's guard and proof, restored (this migration's copy of their text).
CREATE OR REPLACE FUNCTION land_right_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    RAISE EXCEPTION 'right.history: a right is never deleted; it ends on a lawful ground'
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  IF OLD.status = 'ended' OR OLD.end_lifespan IS NOT NULL THEN
    RAISE EXCEPTION 'right.history: an ended or superseded right is history and is never rewritten'
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  IF NEW.status = 'ended' AND coalesce(NEW.end_ground, '') NOT IN
     ('expiry','voluntary_withdrawal','expropriation','court_judgment','mutation','holder_extinct') THEN
    RAISE EXCEPTION 'right.end.forbidden_ground: a right may not end on ground "%"; settling in town is never a ground (农村土地承包法 art 27; 乡村振兴促进法 art 55)', NEW.end_ground
      USING ERRCODE = 'check_violation';
  END IF;
  IF (to_jsonb(NEW) - 'status' - 'end_ground' - 'end_evidence' - 'ended_on' - 'end_lifespan' - 'end_record_id')
     <> (to_jsonb(OLD) - 'status' - 'end_ground' - 'end_evidence' - 'ended_on' - 'end_lifespan' - 'end_record_id') THEN
    RAISE EXCEPTION 'right.history: a right changes by a new version, never in place'
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  IF NEW.status = 'current' AND NEW.end_record_id IS NOT NULL THEN
    RAISE EXCEPTION 'right.history: a current right carries no end record'
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  IF NEW.status = 'ended' AND NEW.end_lifespan IS NOT NULL THEN
    RAISE EXCEPTION 'right.end.silent: a right ends by its recorded end, not by also closing its lifespan'
      USING ERRCODE = 'integrity_constraint_violation';
  END IF;
  RETURN NEW;
END $$;
CREATE OR REPLACE FUNCTION land_right_end_proof(r land_right) RETURNS void LANGUAGE plpgsql AS $$
DECLARE hh record;
BEGIN
  CASE r.end_ground
  WHEN 'expiry' THEN
    IF r.term_end IS NULL OR r.ended_on < r.term_end OR r.term_end > current_date THEN
      RAISE EXCEPTION 'right.end.not_expired: right % runs until %; it ends on expiry only at or after the term end (农村土地承包法 art 21, 27)', r.uid, r.term_end
        USING ERRCODE = 'check_violation';
    END IF;
  WHEN 'holder_extinct' THEN
    SELECT ended_on, end_ground INTO hh FROM household WHERE cbfbm = r.holder_household_code;
    IF hh.ended_on IS NULL OR hh.end_ground IS NULL THEN
      RAISE EXCEPTION 'right.end.evidence: household % has not ended on a lawful ground of its own; its right does not end as "holder extinct" (农村土地承包法 art 27; 乡村振兴促进法 art 55)', r.holder_household_code
        USING ERRCODE = 'check_violation';
    END IF;
  WHEN 'mutation' THEN
    IF r.end_record_id IS NULL OR NOT EXISTS (
        SELECT 1 FROM parcel_lineage l JOIN parcel p ON p.id IN (l.parent_id, l.child_id)
        JOIN land_right_parcel rp ON rp.parcel_uid = p.uid AND rp.right_id = r.id
        WHERE l.mutation_id = r.end_record_id) THEN
      RAISE EXCEPTION 'right.end.evidence: right % ends on a mutation only with the parcel mutation that changed its parcels (农村土地承包法 art 27)', r.uid
        USING ERRCODE = 'check_violation';
    END IF;
  WHEN 'court_judgment' THEN
    IF r.end_record_id IS NULL OR NOT EXISTS (
        SELECT 1 FROM court_judgment j WHERE j.id = r.end_record_id AND j.right_uid = r.uid
          AND j.judged_on <= r.ended_on) THEN
      RAISE EXCEPTION 'right.end.evidence: right % ends on a court judgment only with the judgment recorded (court, case number, date, file) (农村土地承包法 art 27)', r.uid
        USING ERRCODE = 'check_violation';
    END IF;
  WHEN 'expropriation' THEN
    IF r.end_record_id IS NULL OR NOT EXISTS (
        SELECT 1 FROM expropriation x WHERE x.id = r.end_record_id AND x.right_uid = r.uid
          AND x.compensation > 0) THEN
      RAISE EXCEPTION 'right.end.evidence: right % ends on expropriation only with the expropriation and its compensation recorded (土地管理法 art 48; 农村土地承包法 art 27)', r.uid
        USING ERRCODE = 'check_violation';
    END IF;
  WHEN 'voluntary_withdrawal' THEN
    IF r.end_record_id IS NULL OR NOT EXISTS (
        SELECT 1 FROM withdrawal w WHERE w.id = r.end_record_id AND w.right_uid = r.uid
          AND w.status = 'effective' AND w.effective_on <= r.ended_on) THEN
      RAISE EXCEPTION 'right.end.withdrawal_not_effective: right % ends on voluntary withdrawal only when a withdrawal of it has taken effect (农村土地承包法 art 27; 乡村振兴促进法 art 55)', r.uid
        USING ERRCODE = 'check_violation';
    END IF;
  END CASE;
END $$;
ALTER TABLE land_right DROP CONSTRAINT ck_land_right_end_only_on_lawful_ground;
ALTER TABLE land_right ADD CONSTRAINT ck_land_right_end_only_on_lawful_ground CHECK (
  (status = 'current' AND end_ground IS NULL AND ended_on IS NULL)
  OR (status = 'ended' AND ended_on IS NOT NULL AND end_ground IN ('expiry',
      'voluntary_withdrawal','expropriation','court_judgment','mutation','holder_extinct')));
DROP TABLE market_rent_instalment;
DROP TABLE market_trade_certificate;
DROP TABLE market_contract_confirmation;
DROP TABLE market_contract;
DROP FUNCTION market_trade_certificate_guard();
DROP FUNCTION market_confirmation_check();
DROP FUNCTION market_contract_guard();
ALTER TABLE market_ledger_txn DROP CONSTRAINT ck_market_ledger_txn_kind;
ALTER TABLE market_ledger_txn ADD CONSTRAINT ck_market_ledger_txn_kind CHECK (kind IN
  ('deposit_lodged','deposit_refunded','deposit_applied','deposit_forfeited','risk_lodged','risk_refunded'));
DROP TABLE market_award;
DROP TABLE market_priority_exercise;
DROP TABLE market_bid;
DROP TABLE market_auction_bidder;
DROP TRIGGER market_auction_guard ON market_auction;
DROP FUNCTION market_auction_now(market_auction);
DROP TABLE market_auction;
DROP FUNCTION market_priority_check();
DROP FUNCTION market_auction_guard();
DROP FUNCTION market_bid_accept();
"""


def upgrade():
    op.execute(UP)


def downgrade():
    op.execute(DOWN)
