"""The auction's price, count, hash, end and terms moved only with its bids — but the guard
recognised "with its bids" as "from a trigger" (pg_trigger_depth() > 1).  The app role may create
temporary tables and give them triggers of its own: an UPDATE of market_auction from such a
trigger ran at depth 2 and moved the price, the end and the step freely.

Now the bid trigger (market_bid_accept) runs as the schema's owner (SECURITY DEFINER, search_path
pinned), and the guard lets the price, count, hash and end move only when the writer is that owner
— the bid trigger, or a migration — whatever the trigger depth.  The terms (reserve, step, start,
timed phase, clock) never move after the auction is opened by anyone but the owner.

Revision ID: 0020_market_attacks
Revises: 0019_security_attacks
"""
from alembic import op

revision = "0020_market_attacks"
down_revision = "0019_security_attacks"
branch_labels = None
depends_on = None

GUARD = """
CREATE OR REPLACE FUNCTION market_auction_guard() RETURNS trigger LANGUAGE plpgsql
SET search_path = public, pg_temp AS $$
BEGIN
  IF {who} AND (NEW.current_price_fen IS DISTINCT FROM OLD.current_price_fen
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
"""

OWNER_ONLY = ("(SELECT oid FROM pg_roles WHERE rolname = current_user) IS DISTINCT FROM "
              "(SELECT relowner FROM pg_class WHERE oid = 'public.market_auction'::regclass)")


# A deposit or risk-deposit account belongs to one application: only that application's
# transactions move it, and it is never refunded or applied beyond what it holds (balance <= 0:
# a liability).  Checked at commit, like the balance of each transaction.
ACCOUNTS = """
CREATE FUNCTION market_ledger_account_owner() RETURNS trigger LANGUAGE plpgsql
SET search_path = public, pg_temp AS $$
DECLARE owner integer; total bigint;
BEGIN
  IF NEW.account !~ '^(deposit|risk):application:[0-9]+$' THEN
    RETURN NULL;
  END IF;
  SELECT application_id INTO owner FROM market_ledger_txn WHERE id = NEW.txn_id;
  IF owner IS DISTINCT FROM split_part(NEW.account, ':', 3)::integer THEN
    RAISE EXCEPTION 'market.ledger.owner: % moved by a transaction of application %',
      NEW.account, owner USING ERRCODE = 'check_violation';
  END IF;
  SELECT sum(amount_fen) INTO total FROM market_ledger_entry WHERE account = NEW.account;
  IF total > 0 THEN
    RAISE EXCEPTION 'market.ledger.overdrawn: % paid out % fen more than it held',
      NEW.account, total USING ERRCODE = 'check_violation';
  END IF;
  RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER market_ledger_account_owner AFTER INSERT ON market_ledger_entry
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION market_ledger_account_owner();
"""


def upgrade():
    op.execute(ACCOUNTS)
    op.execute("ALTER FUNCTION market_bid_accept() SECURITY DEFINER "
               "SET search_path = public, pg_temp")
    op.execute(GUARD.format(who=OWNER_ONLY))


def downgrade():
    op.execute("DROP TRIGGER market_ledger_account_owner ON market_ledger_entry")
    op.execute("DROP FUNCTION market_ledger_account_owner()")
    op.execute(GUARD.format(who="pg_trigger_depth() = 1"))
    op.execute("ALTER FUNCTION market_bid_accept() SECURITY INVOKER")
