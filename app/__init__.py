"""Sanquan (三权): rural property rights platform."""
from __future__ import annotations

import os
import time
from pathlib import Path

from flask import Flask, abort, request, send_from_directory, session

from .config import config_from_env
from .extensions import api, babel, csrf, db, limiter, login_manager, migrate

ROOT = Path(__file__).resolve().parent.parent
VENDOR_PACKAGES = {"swagger-ui-dist", "maplibre-gl"}


def use_time_zone(name: str) -> None:
    """Periods run on the server's time in China (domain.md: notice periods, cooling-off, terms):
    the process's local date is the same calendar day as the database's current_date (the
    private cluster runs in Asia/Shanghai, and the engine asks for it — register_extensions),
    so a check in Python and its twin in SQL never disagree by a day around 16:00 UTC."""
    if os.environ.get("TZ") != name:
        os.environ["TZ"] = name
        time.tzset()


# On import, so that every date computed in this process (a CLI, a worker, a test module's
# constants) is already China's; create_app applies the configured TIME_ZONE again.
TIME_ZONE = os.environ.get("SANQUAN_TIME_ZONE", "Asia/Shanghai")
use_time_zone(TIME_ZONE)


def create_app(config=None) -> Flask:
    app = Flask(__name__, template_folder=str(ROOT / "templates"),
                static_folder=str(ROOT / "static"), instance_path=str(ROOT / "instance"))
    app.config.from_object(config_from_env())
    if isinstance(config, dict):
        app.config.update(config)
    elif config is not None:
        app.config.from_object(config)
    use_time_zone(app.config.get("TIME_ZONE") or TIME_ZONE)

    from .security import install_converters, production_checks, register_security

    install_converters(app)  # before any route is added: ids beyond int4 are 404
    register_extensions(app)
    register_security(app)
    register_models()
    register_signal_handlers()
    register_blueprints(app)
    register_todos()
    from .errors import register_errorhandlers

    register_errorhandlers(app)
    from .observability import RequestIdMiddleware, register_observability

    register_observability(app)
    register_commands(app)
    register_template_helpers(app)
    mount_tiles(app)
    from .security import HeadersMiddleware

    app.wsgi_app = HeadersMiddleware(app.wsgi_app, app.config)  # tiles too
    if app.config.get("TRUSTED_PROXIES"):
        from werkzeug.middleware.proxy_fix import ProxyFix

        n = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n)
    app.wsgi_app = RequestIdMiddleware(app.wsgi_app)  # outermost: tiles and errors carry it
    if app.config.get("ENV_NAME") == "production" and not app.config.get("SKIP_PRODUCTION_CHECKS"):
        production_checks(app)
    return app


def mount_tiles(app: Flask) -> None:
    """Vector tiles are served in front of Flask (see app/parcels/tiles.py)."""
    from werkzeug.middleware.dispatcher import DispatcherMiddleware

    from .parcels.tiles import TileApp

    # Tiles are public and read-only: the replica serves them when there is one.
    app.wsgi_app = DispatcherMiddleware(
        app.wsgi_app, {"/tiles": TileApp(app.config.get("DATABASE_REPLICA_URL")
                                          or app.config["SQLALCHEMY_DATABASE_URI"])})


def register_signal_handlers() -> None:
    """Higher features subscribe to lower features' signals (app/signals.py): import each
    subscriber module once, so the handlers are connected before any operation runs."""
    from .certificates import signals as _ce  # noqa: F401
    from .people import signals as _pe  # noqa: F401
    from .rights import signals as _r  # noqa: F401
    from .withdrawal import signals as _w  # noqa: F401


def register_models() -> None:
    # Import every feature's models so that metadata (and Alembic) sees all tables.
    from .audit import models as _a  # noqa: F401
    from .auth import models as _u  # noqa: F401
    from .campaigns import models as _cm  # noqa: F401
    from .certificates import models as _ce  # noqa: F401
    from .collectives import models as _c  # noqa: F401
    from .divisions import models as _d  # noqa: F401
    from .imports import models as _i  # noqa: F401
    from .jobs import models as _j  # noqa: F401
    from .market import models as _mk  # noqa: F401
    from .membership import models as _mb  # noqa: F401
    from .parcels import models as _p  # noqa: F401
    from .people import models as _pe  # noqa: F401
    from .reports import models as _rp  # noqa: F401
    from .rights import models as _r  # noqa: F401
    from .settlement import models as _s  # noqa: F401
    from .withdrawal import models as _w  # noqa: F401


def register_todos() -> None:
    """Each feature's to-do provider (app/todo.py), in the order the home page lists them."""
    from .campaigns import todo as _cm  # noqa: F401
    from .imports import todo as _i  # noqa: F401
    from .market import todo as _mk  # noqa: F401
    from .reports import todo as _rp  # noqa: F401
    from .settlement import todo as _s  # noqa: F401
    from .withdrawal import todo as _w  # noqa: F401
    # membership: add `from .membership import todo as _ms` here.


def select_locale() -> str:
    from flask import has_request_context

    if not has_request_context():  # jobs and commands: the register's language, Chinese
        return "zh"
    lang = session.get("lang")
    if lang in ("zh", "en"):
        return lang
    return "zh"  # Chinese first; English only when the user switches


def register_extensions(app: Flask) -> None:
    # Every pooled connection is pinged before use: a restarted database costs no request.
    # Sessions keep the server's time zone of China (see use_time_zone), whatever the server's
    # default: SQL's current_date and Python's date.today() are the same day.
    opts = dict(app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
    connect_args = dict(opts.get("connect_args") or {})
    tz = app.config.get("TIME_ZONE") or TIME_ZONE
    connect_args.setdefault("options", f"-c timezone={tz}")
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {**opts, "pool_pre_ping": True,
                                               "connect_args": connect_args}
    replica = app.config.get("DATABASE_REPLICA_URL")
    if replica:  # the bind of app.extensions.reads_replica (docs/scaling.md)
        from .extensions import REPLICA, remember_writes

        app.config["SQLALCHEMY_BINDS"] = {**app.config.get("SQLALCHEMY_BINDS", {}),
                                          REPLICA: replica}
        app.after_request(remember_writes)
    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), compare_type=True)
    csrf.init_app(app)
    limiter.init_app(app)
    babel.init_app(app, locale_selector=select_locale,
                   default_translation_directories=str(ROOT / "app" / "translations"))
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.session_protection = "strong"
    api.init_app(app)

    from .auth.models import User

    @login_manager.user_loader
    def load_user(user_id: str):
        uid, _, stamp = (user_id or "").partition(":")
        if not uid.isdigit() or int(uid) > 2 ** 31 - 1:
            return None
        user = db.session.get(User, int(uid))
        if user is None or not user.active or stamp != user.session_stamp():
            return None  # deactivated, or the password changed since this session began
        return user

    # Bearer tokens are checked in app.security.bearer_auth (before the session is consulted).

    from flask_babel import lazy_gettext as _l

    login_manager.login_message = _l("Please sign in to see this page.")
    login_manager.login_message_category = "info"

    @login_manager.unauthorized_handler
    def unauthorized():
        from flask import redirect, url_for

        from .errors import problem_response, wants_json

        if wants_json():
            return problem_response({"type": "about:blank", "title": "Unauthorized",
                                     "status": 401,
                                     "detail": "Sign in or send 'Authorization: Bearer <token>'."},
                                    401)
        from flask import flash

        flash(str(login_manager.login_message), "info")
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))


def register_blueprints(app: Flask) -> None:
    from .audit.views import bp as audit_bp
    from .auth.views import bp as auth_bp
    from .campaigns.views import bp as campaigns_bp
    from .certificates.views import bp as certificates_bp
    from .collectives.views import bp as collectives_bp
    from .imports.views import bp as imports_bp
    from .main.views import bp as main_bp
    from .market.views import bp as market_bp
    from .me.views import bp as me_bp
    from .membership.views import bp as membership_bp
    from .ogc.views import bp as ogc_bp
    from .opendata.views import bp as opendata_bp
    from .parcels.views import bp as parcels_bp
    from .people.views import bp as people_bp
    from .reports.views import bp as reports_bp
    from .rest import register_api
    from .settings.views import bp as settings_bp
    from .settlement.views import bp as settlement_bp
    from .withdrawal.views import bp as withdrawal_bp

    for bp in (main_bp, auth_bp, people_bp, collectives_bp, audit_bp, parcels_bp, ogc_bp,
               imports_bp, certificates_bp, campaigns_bp, me_bp, settlement_bp, withdrawal_bp,
               reports_bp, market_bp, settings_bp, membership_bp, opendata_bp):
        app.register_blueprint(bp)
    register_api(api)

    @app.get("/vendor/<package>/<path:filename>")
    def vendor(package: str, filename: str):
        """Front-end libraries installed from npm at setup (never committed)."""
        if package not in VENDOR_PACKAGES:
            abort(404)
        return send_from_directory(ROOT / "node_modules" / package, filename, max_age=86400)

    vendor.access_spec = None  # public static files


def register_commands(app: Flask) -> None:
    from .audit.cli import audit_cli
    from .demo.cli import demo_cli
    from .imports.cli import import_cli
    from .jobs.cli import jobs_cli
    from .market.cli import market_cli
    from .opendata.cli import opendata_cli

    app.cli.add_command(audit_cli)
    app.cli.add_command(demo_cli)
    app.cli.add_command(import_cli)
    app.cli.add_command(jobs_cli)
    app.cli.add_command(market_cli)
    app.cli.add_command(opendata_cli)


def register_template_helpers(app: Flask) -> None:
    from flask_babel import get_locale, gettext

    from . import codes
    from .access import ROLE_LABELS, user_can

    def code_label(table: str, code) -> str:
        return codes.label(getattr(codes, table), code, gettext)

    @app.context_processor
    def helpers():
        return {"current_locale": str(get_locale()), "user_can": user_can,
                "role_label": lambda r: str(ROLE_LABELS.get(r, r)), "code_label": code_label}
