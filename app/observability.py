"""Observability (issue 18): probes, request ids, JSON logs and Prometheus metrics.

- `/healthz`: the process answers (no database).  `/readyz`: the database answers, Redis when
  REDIS_URL is set, and the schema is at the migrations' head — 503 with the failing checks
  otherwise.  Both public; they say only ok/failing.
- Request id: `X-Request-ID` is honoured when it is a short token (letters, digits, `._-`,
  at most 64), generated otherwise; it is on every log line written while the request runs and
  on the response (vector tiles included: a WSGI middleware outside Flask).
- Logs: one JSON object per line (LOG_JSON, default on): time, level, logger, message,
  request_id, and the extras a caller gives (job, kind).
- Metrics (`prometheus_client`): request latency by route template, tile latency, bid latency,
  job durations by kind and outcome, job queue depth (read from the database at scrape time).
  Under gunicorn set PROMETHEUS_MULTIPROC_DIR (gunicorn.conf.py does) so that every worker's
  samples are summed.  `/metrics` is answered only to a loopback peer that came through no
  proxy (no X-Forwarded-For, Forwarded, X-Real-IP, Via…; and none configured: with
  TRUSTED_PROXIES every peer is the proxy), or to a request with `X-Metrics-Token:
  $METRICS_TOKEN` (when set); anyone else gets 404.
- The database unreachable (a restart, a failover): 503 problem JSON with Retry-After on the
  API, a short 503 page elsewhere — never a 500.
"""
from __future__ import annotations

import contextvars
import hmac
import json
import logging
import os
import re
import sys
import time
import uuid

from flask import Blueprint, Flask, current_app, g, jsonify, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily

from app.access import access
from app.errors import problem_response, wants_json
from app.extensions import db
from app.jobs.operations import queue_depth

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id",
                                                                            default=None)
RID_OK = re.compile(r"[A-Za-z0-9._-]{1,64}")  # fullmatch: `$` would let a final "\n" in
log = logging.getLogger("sanquan")

from app.metrics import BID_SECONDS, JOB_SECONDS, REQUEST_SECONDS, TILE_SECONDS  # noqa: E402,F401

# --------------------------------------------------------------------------- request id, logs

def new_request_id(given: str | None) -> str:
    return given if given and RID_OK.fullmatch(given) else uuid.uuid4().hex


class RequestIdMiddleware:
    """Outermost WSGI layer: a request id for everything served (Flask and the tiles)."""

    def __init__(self, wsgi_app):
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        rid = new_request_id(environ.get("HTTP_X_REQUEST_ID"))
        environ["sanquan.request_id"] = rid
        token = request_id_var.set(rid)

        def start(status, headers, exc_info=None):
            headers = [(k, v) for k, v in headers if k.lower() != "x-request-id"]
            headers.append(("X-Request-ID", rid))
            return start_response(status, headers, exc_info)

        try:
            return self.wsgi_app(environ, start)
        finally:
            request_id_var.reset(token)


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = getattr(record, "request_id", None) or request_id_var.get()
        return True


class JsonFormatter(logging.Formatter):
    STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "request_id"}

    def format(self, record: logging.LogRecord) -> str:
        out = {"ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
               + f".{int(record.msecs):03d}Z", "level": record.levelname,
               "logger": record.name, "msg": record.getMessage(),
               "request_id": getattr(record, "request_id", None) or request_id_var.get(),
               "pid": record.process}
        for k, v in vars(record).items():
            if k not in self.STANDARD and not k.startswith("_"):
                out[k] = v if isinstance(v, (str, int, float, bool, type(None))) else str(v)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


_configured = False


def configure_logging(json_lines: bool = True, level: int = logging.INFO) -> None:
    """Once per process: a stderr handler on the root logger, JSON lines with the request id."""
    global _configured
    if _configured:
        return
    _configured = True
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter() if json_lines else logging.Formatter(
        "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"))
    handler.set_name("sanquan")
    root = logging.getLogger()
    root.addHandler(handler)
    # WeasyPrint logs every layout step at INFO: one line per page of every certificate.
    logging.getLogger("weasyprint").setLevel(logging.WARNING)
    logging.getLogger("fontTools").setLevel(logging.WARNING)
    if root.level > level or root.level == logging.NOTSET:
        root.setLevel(level)


# --------------------------------------------------------------------------- metrics

class JobQueueCollector:
    """Job queue depth by status, read from the database when scraped."""

    def __init__(self, app: Flask):
        self.app = app

    def collect(self):
        g_ = GaugeMetricFamily("sanquan_jobs", "Jobs queued or running", labels=["status"])
        try:

            with self.app.app_context():
                depth = queue_depth()
        except Exception:
            depth = None
        for s in ("queued", "running"):
            if depth is not None:
                g_.add_metric([s], depth.get(s, 0))
        yield g_


def metrics_allowed() -> bool:
    token = current_app.config.get("METRICS_TOKEN")
    given = request.headers.get("X-Metrics-Token")
    if token and given and hmac.compare_digest(token.encode(), given.encode()):
        return True
    if current_app.config.get("TRUSTED_PROXIES"):
        # behind a reverse proxy every request comes from a local peer: a proxy that sets only
        # X-Real-IP (or nothing) would hand the metrics to anyone — the token only, then
        return False
    peer = request.environ.get("REMOTE_ADDR", "")
    return peer in ("127.0.0.1", "::1") and not any(
        h in request.headers for h in PROXY_HEADERS)


# any of these: a proxy relayed the request (the client is elsewhere)
PROXY_HEADERS = ("X-Forwarded-For", "Forwarded", "X-Real-IP", "Via", "X-Forwarded-Host",
                 "X-Client-IP", "True-Client-IP", "CF-Connecting-IP")


def metrics_payload(app: Flask) -> bytes:
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)
    else:
        for collector in list(REGISTRY._collector_to_names):
            registry.register(collector)
    registry.register(JobQueueCollector(app))
    return generate_latest(registry)


# --------------------------------------------------------------------------- probes

_head: dict[str, set[str]] = {}


def migration_heads() -> set[str]:
    if "heads" not in _head:
        from pathlib import Path

        from alembic.config import Config
        from alembic.script import ScriptDirectory

        cfg = Config()
        # the package's own place, not current_app's: the probe and its tests may ask outside a
        # request, and the migrations always sit beside the package
        cfg.set_main_option("script_location",
                            str(Path(__file__).resolve().parent.parent / "migrations"))
        _head["heads"] = set(ScriptDirectory.from_config(cfg).get_heads())
    return _head["heads"]


def readiness() -> tuple[bool, dict]:
    """Each check: 'ok' or 'failing' (or 'behind' for the schema, 'off' for Redis unset)."""
    from sqlalchemy import text

    checks = {}
    try:
        current = set(db.session.scalars(text("SELECT version_num FROM alembic_version")))
        checks["database"] = "ok"
        checks["migrations"] = "ok" if current == migration_heads() else "behind"
    except Exception:
        log.warning("readiness: database check failed", exc_info=True)
        checks["database"], checks["migrations"] = "failing", "unknown"
        try:
            db.session.rollback()
        except Exception:
            pass
    url = current_app.config.get("REDIS_URL")
    if url:
        try:
            from redis import Redis

            Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1).ping()
            checks["redis"] = "ok"
        except Exception:
            checks["redis"] = "failing"
    else:
        checks["redis"] = "off"
    return all(v in ("ok", "off") for v in checks.values()), checks


bp = Blueprint("ops", __name__)


def _public(view):

    return access(public=True)(view)


@bp.get("/healthz")
@_public
def healthz():
    return jsonify(status="ok"), 200, {"Cache-Control": "no-store"}


@bp.get("/readyz")
@_public
def readyz():
    ok, checks = readiness()
    return jsonify(status="ok" if ok else "failing", checks=checks), (200 if ok else 503), \
        {"Cache-Control": "no-store"}


@bp.get("/metrics")
@_public  # restricted below: loopback without a proxy, or X-Metrics-Token
def metrics():
    from flask import abort

    if not metrics_allowed():
        abort(404)
    return metrics_payload(current_app._get_current_object()), 200, \
        {"Content-Type": CONTENT_TYPE_LATEST, "Cache-Control": "no-store"}


# --------------------------------------------------------------------------- wiring

def _start_timer():
    g._t0 = time.perf_counter()


def _observe(resp):
    t0 = getattr(g, "_t0", None)
    if t0 is not None:
        rule = request.url_rule.rule if request.url_rule is not None else "<unmatched>"
        took = time.perf_counter() - t0
        REQUEST_SECONDS.labels(request.method, rule, str(resp.status_code)).observe(took)
        if request.method == "POST" and rule.endswith("/auctions/<int:auction_id>/bids"):
            BID_SECONDS.labels(str(resp.status_code)).observe(took)
    return resp


def database_unavailable(err):
    """A connection refused or lost (the database restarting): 503, retry — never a 500.
    Nothing was committed by the failed request; a bid retried with its client_key is made
    once."""

    log.error("database unavailable: %s", type(err).__name__, exc_info=True)
    try:
        db.session.rollback()
    except Exception:
        pass
    headers = {"Retry-After": "5", "Cache-Control": "no-store"}
    if wants_json():
        resp = problem_response({"type": "about:blank", "title": "Service Unavailable",
                                 "status": 503, "code": "service.database_unavailable",
                                 "detail": "The register's database is not reachable right now; "
                                           "nothing was changed. Retry in a few seconds (a bid "
                                           "with the same client_key is made only once).",
                                 "retry_after": 5}, 503)
        resp.headers.update(headers)
        return resp
    from flask_babel import gettext as _

    body = ("<!doctype html><meta charset=utf-8><title>503</title><h1>503</h1><p>"
            + _("The register's database is not reachable right now; nothing was changed. "
                "Please try again in a few seconds.") + "</p>")
    return body, 503, {**headers, "Content-Type": "text/html; charset=utf-8"}


def register_observability(app: Flask) -> None:
    if app.config.get("LOG_JSON") is not None:
        configure_logging(bool(app.config.get("LOG_JSON")))
    app.register_blueprint(bp)
    app.before_request(_start_timer)
    app.after_request(_observe)
    from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError

    for exc in (OperationalError, InterfaceError, DisconnectionError):
        app.register_error_handler(exc, database_unavailable)
    try:
        import psycopg

        app.register_error_handler(psycopg.OperationalError, database_unavailable)
    except ImportError:
        pass
