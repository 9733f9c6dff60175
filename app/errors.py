"""Domain errors: a rule's code, its message in Chinese and English, and its legal source.

Operations raise `DomainError`; the HTML layer flashes it, the API answers with problem
JSON (RFC 9457).  The messages are gettext strings, so one catalogue serves both languages.
"""
from __future__ import annotations

from dataclasses import dataclass

from flask import flash, jsonify, redirect, render_template, request
from flask_babel import force_locale
from flask_babel import lazy_gettext as _l
from werkzeug.exceptions import HTTPException


@dataclass(frozen=True)
class Rule:
    code: str
    message: object  # a lazy gettext string, may hold %(name)s placeholders
    source: object  # the legal source, also translatable
    status: int = 422


class DomainError(Exception):
    """A refused operation.  `rule` says which rule, `params` fill its message."""

    def __init__(self, rule: Rule, **params):
        self.rule = rule
        self.params = params
        super().__init__(self.message("en"))

    @property
    def code(self) -> str:
        return self.rule.code

    @property
    def status(self) -> int:
        return self.rule.status

    def message(self, locale: str | None = None) -> str:
        if locale is None:
            return str(self.rule.message) % self.params if self.params else str(self.rule.message)
        with force_locale(locale):
            return self.message(None)

    def source(self, locale: str | None = None) -> str:
        if locale is None:
            return str(self.rule.source)
        with force_locale(locale):
            return str(self.rule.source)

    def full(self, locale: str | None = None) -> str:
        return f"{self.message(locale)} ({self.source(locale)})"

    def problem(self) -> dict:
        return {
            "type": f"urn:sanquan:rule:{self.code}",
            "title": self.code,
            "status": self.status,
            "detail": self.message(),
            "code": self.code,
            "legal_source": self.source(),
            "message_zh": self.message("zh"),
            "message_en": self.message("en"),
            "legal_source_zh": self.source("zh"),
            "legal_source_en": self.source("en"),
        }


def problem_response(payload: dict, status: int):
    resp = jsonify(payload)
    resp.status_code = status
    resp.mimetype = "application/problem+json"
    return resp


def wants_json() -> bool:
    return request.path.startswith("/api/") or request.path.startswith("/ogc/")


# Rules that belong to no single feature.
NOT_ALLOWED = Rule(
    "access.forbidden",
    _l("Your role or jurisdiction does not allow this."),
    _l("Sanquan access policy: every staff account acts only within its role and jurisdiction"),
    403,
)


REQUEST_SCHEMA = Rule(
    "request.schema",
    _l("The request does not match the API's schema: see the fields named in 'errors'."),
    _l("Sanquan API contract (OpenAPI document at /api/openapi.json)"),
    422,
)


def register_errorhandlers(app):
    @app.errorhandler(DomainError)
    def domain_error(err: DomainError):
        if wants_json():
            return problem_response(err.problem(), err.status)
        flash(err.full(), "error")
        return redirect(request.referrer or "/"), 303

    def http_error(err: HTTPException):
        if wants_json():
            messages = _schema_messages(err)
            if messages is not None:
                # A request that does not match the API's schema (webargs/marshmallow through
                # flask-smorest): problem JSON naming the rule and every field at fault.
                with force_locale("zh"):
                    zh = (str(REQUEST_SCHEMA.message), str(REQUEST_SCHEMA.source))
                with force_locale("en"):
                    en = (str(REQUEST_SCHEMA.message), str(REQUEST_SCHEMA.source))
                return problem_response(
                    {"type": f"urn:sanquan:rule:{REQUEST_SCHEMA.code}",
                     "title": REQUEST_SCHEMA.code, "status": err.code,
                     "detail": str(REQUEST_SCHEMA.message), "code": REQUEST_SCHEMA.code,
                     "legal_source": str(REQUEST_SCHEMA.source),
                     "message_zh": zh[0], "message_en": en[0],
                     "legal_source_zh": zh[1], "legal_source_en": en[1],
                     "errors": messages}, err.code)
            return problem_response(
                {"type": "about:blank", "title": err.name, "status": err.code,
                 "detail": err.description}, err.code)
        return render_template("errors/http.html", error=err), err.code

    for code in (400, 403, 404, 405, 413, 422, 429):
        app.register_error_handler(code, http_error)

    def api_only(err: HTTPException):
        # Every other status the API can answer (401 from an abort, 406, 409, 410, 412, 415,
        # 416, 500 — an unexpected fault, its description the generic one, no internals —,
        # 501…): problem JSON there too.  Without this, flask-smorest's catch-all answered
        # `{"code": 500, "status": …}` as plain JSON (atkapi).  Pages keep werkzeug's own.
        if wants_json():
            return problem_response({"type": "about:blank", "title": err.name,
                                     "status": err.code, "detail": err.description}, err.code)
        return err

    for code in (401, 406, 409, 410, 411, 412, 414, 415, 416, 417, 428, 431, 500, 501):
        app.register_error_handler(code, api_only)


def _schema_messages(err: HTTPException):
    """The field errors webargs attached to an abort (422 or 400), else None."""
    data = getattr(err, "data", None)
    if not isinstance(data, dict):
        return None
    messages = data.get("errors", data.get("messages"))
    return messages if isinstance(messages, dict) else None
