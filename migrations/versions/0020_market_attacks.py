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


def upgrade():
    op.execute("ALTER FUNCTION market_bid_accept() SECURITY DEFINER "
               "SET search_path = public, pg_temp")
    op.execute(GUARD.format(who=OWNER_ONLY))


def downgrade():
    op.execute(GUARD.format(who="pg_trigger_depth() = 1"))
    op.execute("ALTER FUNCTION market_bid_accept() SECURITY INVOKER")
