"""Every extension object, created once.  And the read replica's routing (issue 18): a request
that `reads_replica` reads through the standby named by DATABASE_REPLICA_URL (bind
"replica"); everything else, and every write, goes to the primary."""
import functools

from flask import g, has_request_context, request
from flask import session as cookie_session
from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_smorest import Api
from flask_sqlalchemy import SQLAlchemy
from flask_sqlalchemy.session import Session as _FsaSession
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import MetaData, text

# Deterministic constraint names so that migrations and models agree.
naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

REPLICA = "replica"  # the bind key of DATABASE_REPLICA_URL
WAL_KEY = "_wal"  # the primary's WAL position after this browser's last write


class RoutingSession(_FsaSession):
    """Reads of a request marked by `reads_replica` go to the replica; a flush (any ORM write)
    always to the primary."""

    def get_bind(self, mapper=None, clause=None, bind=None, **kwargs):
        if (bind is None and not self._flushing and has_request_context()
                and g.get("read_replica")):
            engine = self._db.engines.get(REPLICA)
            if engine is not None:
                return engine
        return super().get_bind(mapper=mapper, clause=clause, bind=bind, **kwargs)


db = SQLAlchemy(metadata=MetaData(naming_convention=naming_convention),
                session_options={"class_": RoutingSession})


def replica_engine():
    return db.engines.get(REPLICA)


def _replica_caught_up(engine) -> bool:
    """Read-your-writes: a browser that wrote reads the replica again only once the replica
    has replayed the primary's WAL up to that write (no clock, no guess)."""
    lsn = cookie_session.get(WAL_KEY)
    if not lsn:
        return True
    try:
        with engine.connect() as c:
            done = c.execute(text("SELECT coalesce(pg_last_wal_replay_lsn() >= "
                                  "CAST(:l AS pg_lsn), false)"), {"l": lsn}).scalar()
    except Exception:  # noqa: BLE001 — the replica down: the primary serves
        return False
    if done:
        cookie_session.pop(WAL_KEY, None)
    return bool(done)


def reads_replica(view):
    """A public or read-only view: its GET/HEAD is served by the replica when one is
    configured and has caught up with this browser's own last write; otherwise by the
    primary."""
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        engine = replica_engine()
        if (engine is not None and request.method in ("GET", "HEAD")
                and _replica_caught_up(engine)):
            g.read_replica = True
        return view(*args, **kwargs)
    wrapper.reads_replica = True
    return wrapper


def remember_writes(response):
    """after_request (registered only when a replica is configured): a request that may have
    written (any unsafe method) records the primary's WAL insert position in the browser's
    session, so its next replica read waits for — or skips — a replica that lags behind it."""
    if request.method not in ("GET", "HEAD", "OPTIONS") and response.status_code < 500:
        try:
            with db.engine.connect() as c:
                cookie_session[WAL_KEY] = c.execute(
                    text("SELECT pg_current_wal_insert_lsn()::text")).scalar()
        except Exception:  # noqa: BLE001 — never fail a response for this
            pass
    return response
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
limiter = Limiter(key_func=get_remote_address, default_limits=[])
babel = Babel()
api = Api()
