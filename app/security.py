"""Request hardening shared by every route: bounded ids in paths, refused control characters,
bounded pages and dates, depth-limited JSON, bearer tokens that are checked (never ignored),
security headers, the configured public base URL, and the production start-up checks.

Nothing here knows a feature; features keep their own rules in their operations."""
from __future__ import annotations

import re

from flask import Flask, abort, current_app, g, request, url_for
from flask_babel import gettext as _
from werkzeug.routing import IntegerConverter

from .auth.models import User
from .auth.operations import user_by_token
from .errors import problem_response, wants_json
from .extensions import db, limiter

INT32_MAX = 2 ** 31 - 1
MAX_PAGE = 100_000
MAX_JSON_DEPTH = 32
DATE_MIN_YEAR, DATE_MAX_YEAR = 1850, 2200
# Any C0 control character but tab, line feed and carriage return, and DEL.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# A value that is a date (or an ISO date-time) and nothing else: "2026-11-29", "99999-1-1",
# "2026-11-29T08:00:00+08:00"; not a phone like 010-1234-5678 or a house number 1-2-3.
_DATE = re.compile(r"^\s*(\d{4,6})-\d{1,2}-\d{1,2}(?:[T ][0-9:.]+(?:Z|[+-][0-9:]+)?)?\s*$")
PAGE_PARAMS = ("page", "per_page", "limit", "offset")


class BoundedIntConverter(IntegerConverter):
    """`<int:id>` that matches only ids a PostgreSQL integer column can hold; others are 404."""

    def __init__(self, map, *args, **kwargs):
        kwargs.setdefault("max", INT32_MAX)
        super().__init__(map, *args, **kwargs)


def install_converters(app: Flask) -> None:
    app.url_map.converters["int"] = BoundedIntConverter


def _bad(detail: str):
    abort(400, description=detail)


def _json_depth(raw: bytes) -> int:
    """The nesting depth of a JSON text, counted without parsing it (strings skipped)."""
    depth = deepest = 0
    in_str = esc = False
    for b in raw:
        if in_str:
            if esc:
                esc = False
            elif b == 0x5C:
                esc = True
            elif b == 0x22:
                in_str = False
        elif b == 0x22:
            in_str = True
        elif b in (0x5B, 0x7B):
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > MAX_JSON_DEPTH:
                    return deepest
        elif b in (0x5D, 0x7D):
            depth -= 1
    return deepest


def _check_text(name: str, value: str) -> None:
    if _CONTROL.search(value):
        _bad(_("'%(name)s' holds a control character (NUL or another C0 code); refused.",
               name=name))
    m = _DATE.match(value) if len(value) <= 40 else None
    if m:
        year = int(m.group(1))
        if not DATE_MIN_YEAR <= year <= DATE_MAX_YEAR:
            _bad(_("'%(name)s': the year %(year)s is outside %(lo)s–%(hi)s.", name=name,
                   year=year, lo=DATE_MIN_YEAR, hi=DATE_MAX_YEAR))


def _walk(name: str, value) -> None:
    if isinstance(value, str):
        _check_text(name, value)
    elif isinstance(value, dict):
        for k, v in value.items():
            _check_text(name, str(k))
            _walk(f"{name}.{k}", v)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _walk(f"{name}[{i}]", v)
    elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2 ** 53:
        _bad(_("'%(name)s': the number is too large.", name=name))


def guard_input():
    """Refuse, with 400, input no route can mean: control characters anywhere (path, query,
    form, JSON, file names), page numbers that are not small positive integers, years outside
    a sane range, and JSON nested deeper than MAX_JSON_DEPTH."""
    if _CONTROL.search(request.path):
        _bad(_("The path holds a control character; refused."))
    for key, value in request.args.items(multi=True):
        _check_text(key, key)
        _check_text(key, value)
        if key in PAGE_PARAMS:
            top = MAX_PAGE if key in ("page", "per_page") else INT32_MAX  # OGC offsets run high
            if not value.isdigit() or int(value) > top:
                _bad(_("'%(name)s' must be a whole number from 0 to %(top)s.", name=key,
                       top=top))
    if request.method in ("POST", "PUT", "PATCH", "DELETE"):
        ctype = request.mimetype or ""
        if ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
            for key, value in request.form.items(multi=True):
                _check_text(key, key)
                _check_text(key, value)
            for f in request.files.values():
                if f.filename:
                    _check_text("filename", f.filename)
        elif ctype.endswith("json"):
            raw = request.get_data(cache=True)
            if _json_depth(raw) > MAX_JSON_DEPTH:
                _bad(_("JSON nested deeper than %(n)s levels is refused.", n=MAX_JSON_DEPTH))
            data = request.get_json(silent=True)
            if data is None and raw.strip():
                _bad(_("The body is not valid JSON."))
            _walk("body", data)


# ---------------------------------------------------------------------------------------------
# Bearer tokens: validated or refused, never ignored, never mixed with the session's user.

def bearer_auth():
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _sep, token = header.strip().partition(" ")
    if scheme.lower() == "applicant":
        # A market applicant's key (`Authorization: Applicant <key>`): no account, no session
        # user; the market's routes that take it check it themselves (app.market.api).  Like a
        # bearer token it is a header no cross-site form can send, so it may write.
        g.applicant_key = token.strip()
        return None
    user = user_by_token(token.strip()) if scheme.lower() == "bearer" else None
    if user is None:
        return problem_response({"type": "about:blank", "title": "Unauthorized", "status": 401,
                                 "detail": _("The Authorization header holds no valid "
                                             "bearer token.")},
                                401), 401
    # Flask-Login reads the request's user from g._login_user: the token's user, whatever the
    # session cookie says (a cookie never lends its user to a token request, and an anonymous
    # or foreign cookie never hides a valid token).
    g._login_user = user
    g.token_user = user
    return None


# ---------------------------------------------------------------------------------------------
# Security headers

CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data: blob: https:; worker-src 'self' blob:; child-src 'self' blob:; "
       "connect-src 'self' https:; font-src 'self' data:; object-src 'none'; base-uri 'self'; "
       "form-action 'self'; frame-ancestors 'none'")


def _csp(config) -> str:
    """The CSP, with the market's live-bidding stream service (another port, maybe another
    host: MARKET_STREAM_URL) allowed as a connection target for its EventSource."""
    stream = config.get("MARKET_STREAM_URL")
    if not stream:
        return CSP
    from urllib.parse import urlsplit

    u = urlsplit(stream)
    if u.scheme not in ("http", "https") or not u.netloc:
        return CSP
    return CSP.replace("connect-src 'self' https:",
                       f"connect-src 'self' https: {u.scheme}://{u.netloc}")


def header_list(config) -> list[tuple[str, str]]:
    out = [("Content-Security-Policy", _csp(config)), ("X-Content-Type-Options", "nosniff"),
           ("X-Frame-Options", "DENY"), ("Referrer-Policy", "strict-origin-when-cross-origin"),
           ("Cross-Origin-Opener-Policy", "same-origin")]
    if config.get("HSTS"):
        out.append(("Strict-Transport-Security", "max-age=31536000; includeSubDomains"))
    return out


class HeadersMiddleware:
    """The same headers on what is served in front of Flask (the vector tiles)."""

    def __init__(self, wsgi_app, config):
        self.wsgi_app, self.config = wsgi_app, config

    def __call__(self, environ, start_response):
        def start(status, headers, exc_info=None):
            have = {k.lower() for k, _v in headers}
            headers = list(headers) + [(k, v) for k, v in header_list(self.config)
                                       if k.lower() not in have]
            return start_response(status, headers, exc_info)

        return self.wsgi_app(environ, start)


def security_headers(resp):
    h = resp.headers
    for k, v in header_list(current_app.config):
        h.setdefault(k, v)
    if getattr(g, "token_user", None) is not None:
        h.setdefault("Cache-Control", "no-store")
    return resp


# ---------------------------------------------------------------------------------------------
# Public links (QR codes, notices): from PUBLIC_BASE_URL, never from the request's Host.

DEV_BASE_URL = "http://127.0.0.1:5000"


def public_base_url() -> str:
    return (current_app.config.get("PUBLIC_BASE_URL") or DEV_BASE_URL).rstrip("/")


def public_url(endpoint: str, **values) -> str:
    return public_base_url() + url_for(endpoint, **values)


def _data_error(err):
    """A value the database cannot hold (a number out of range, a string longer than its
    column) that slipped past validation: the request is wrong, not the server."""
    db.session.rollback()
    current_app.logger.warning("refused a value the database cannot hold: %s",
                               str(getattr(err, "orig", err)).splitlines()[0][:200])
    if wants_json():
        return problem_response({"type": "about:blank", "title": "Bad Request", "status": 400,
                                 "detail": _("A value is out of range or too long.")}, 400)
    from flask import render_template
    from werkzeug.exceptions import BadRequest

    return render_template("errors/http.html",
                           error=BadRequest(_("A value is out of range or too long."))), 400


def _account_or_address() -> str:
    from flask_login import current_user

    if getattr(current_user, "is_authenticated", False):
        return f"user:{current_user.id}"
    return f"ip:{request.remote_addr or '-'}"


def expensive(view):
    """Rate-limit a route whose answer costs seconds of CPU or a pass over a county's data
    (PDF renders, exports, CSV reports): EXPENSIVE_RATE_LIMIT per account (per address when
    anonymous), so an office behind one address is not throttled as one user."""
    return limiter.limit(lambda: current_app.config["EXPENSIVE_RATE_LIMIT"],
                         key_func=_account_or_address)(view)


def register_security(app: Flask) -> None:
    from sqlalchemy.exc import DataError

    app.before_request(guard_input)
    app.before_request(bearer_auth)
    app.after_request(security_headers)
    app.register_error_handler(DataError, _data_error)


# ---------------------------------------------------------------------------------------------
# Production start-up checks

DEMO_DEFAULT = "sanquan-demo"


class UnsafeConfiguration(RuntimeError):
    pass


def _demo_password_in_use(app: Flask) -> list[str]:

    candidates = {DEMO_DEFAULT, app.config.get("DEMO_PASSWORD") or DEMO_DEFAULT}
    with app.app_context():
        found = users_with_password(db.session, candidates)
        db.session.remove()
    return found


# The accounts `flask demo load` makes (app/demo/operations.py DEMO_USERS, officer, farmer).
DEMO_USERNAMES = ("admin", "bureau", "hukou", "exchange", "auditor", "supervisor", "officer",
                  "farmer")


def users_with_password(session, candidates, limit: int = 200) -> list[str]:
    """Active accounts whose password is one of `candidates`: the demo accounts always (a
    register with more than `limit` users used to hide a demo account behind the others),
    then up to `limit` others (each check costs a password hash)."""
    from sqlalchemy import or_, select
    from werkzeug.security import check_password_hash

    users = session.execute(
        select(User.username, User.password_hash).where(User.active.is_(True), or_(
            User.username.in_(DEMO_USERNAMES), User.id.in_(
                select(User.id).where(User.active.is_(True)).order_by(User.id).limit(limit))))
    ).all()
    return [u for u, h in users if any(check_password_hash(h, pw) for pw in candidates)]


def _accepts_any_password(url: str) -> bool:
    """True when the database lets this URL's user in with a password nobody knows (a `trust`
    line in pg_hba.conf, or peer authentication on a socket): the login checks nothing."""
    import secrets

    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    bogus = make_url(url).set(password="wrong-" + secrets.token_hex(8))
    engine = create_engine(bogus, pool_pre_ping=False)
    try:
        with engine.connect():
            return True
    except Exception:  # refused (or unreachable): the password is being checked
        return False
    finally:
        engine.dispose()


def production_checks(app: Flask) -> None:
    """`SANQUAN_ENV=production` refuses to start with a known password or an open database."""
    problems = []
    if not app.config.get("PUBLIC_BASE_URL"):
        problems.append("PUBLIC_BASE_URL is not set (QR codes and notice links need it).")
    if _accepts_any_password(app.config["SQLALCHEMY_DATABASE_URI"]):
        problems.append("the database accepts this login without checking its password "
                        "(trust or peer authentication); give the app role a password.")
    else:
        users = _demo_password_in_use(app)
        if users:
            problems.append("accounts still use the demo password: " + ", ".join(users))
    if problems:
        raise UnsafeConfiguration("Refusing to start in production: " + " ".join(problems))



def bound_lengths(schema_cls, *models) -> None:
    """Give every string field of an API schema the length of the column it is stored in, so a
    value too long for its column is refused at validation (422), not by the database."""
    from marshmallow import fields, validate
    from sqlalchemy import String

    cols: dict[str, int] = {}
    for m in models:
        for c in m.__table__.columns:
            if isinstance(c.type, String) and c.type.length:
                cols.setdefault(c.name, c.type.length)
    for name, f in schema_cls._declared_fields.items():
        n = cols.get(f.attribute or name)
        if n and isinstance(f, fields.String) and not getattr(f, "_sq_bounded", False):
            f.validators = [*f.validators, validate.Length(max=n)]
            f._sq_bounded = True


def bound_all_ints() -> None:
    """Every integer field of every API schema holds what a PostgreSQL integer holds (ids,
    counts, days): larger values are refused at validation (422), and the OpenAPI document says
    so.  Fields that already carry a Range keep theirs."""
    from marshmallow import class_registry, fields, validate

    seen = set()
    for classes in list(class_registry._registry.values()):
        for cls in classes:
            if cls in seen or not cls.__module__.startswith("app."):
                continue
            seen.add(cls)
            for f in cls._declared_fields.values():
                targets = [f]
                if isinstance(f, fields.List) and isinstance(f.inner, fields.Integer):
                    targets.append(f.inner)
                for t in targets:
                    if isinstance(t, fields.Integer) and \
                            not any(isinstance(v, validate.Range) for v in t.validators):
                        t.validators = [*t.validators,
                                        validate.Range(min=-INT32_MAX - 1, max=INT32_MAX)]


# ---------------------------------------------------------------------------------------------
# CSV for spreadsheets: a cell that a spreadsheet would run as a formula (=HYPERLINK(...),
# +cmd|..., @SUM(...), -2+3) is written with a leading apostrophe, so free text typed by one
# user (a reason, a name, a detail from a delivery) never runs in another user's Excel or WPS.

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")
_PLAIN_NUMBER = re.compile(r"^[+-]?\d+(?:\.\d+)?$")


def csv_cell(value):
    if isinstance(value, str) and value.startswith(_FORMULA_START) \
            and not _PLAIN_NUMBER.match(value):
        return "'" + value
    return value


class SafeCSVWriter:
    """`csv.writer` with every cell passed through `csv_cell`."""

    def __init__(self, f, **kwargs):
        import csv

        self._w = csv.writer(f, **kwargs)

    def writerow(self, row):
        return self._w.writerow([csv_cell(v) for v in row])

    def writerows(self, rows):
        for row in rows:
            self.writerow(row)


def csv_writer(f, **kwargs) -> SafeCSVWriter:
    return SafeCSVWriter(f, **kwargs)
