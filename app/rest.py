"""The JSON API (flask-smorest): OpenAPI at /api/openapi.json, docs at /api/docs."""
from flask import g, request

from .errors import problem_response
from .extensions import csrf

SAFE = {"GET", "HEAD", "OPTIONS"}


def _bearer_for_writes():
    # Session cookies may read; writes need a bearer token, so the API needs no CSRF token
    # and a browser session can never be ridden to change data through it.
    # app.security.bearer_auth has already refused an invalid token; here a write must carry a
    # valid one (a session cookie alone never writes).
    # A market applicant's key (`Authorization: Applicant <key>`) is such a header too; the
    # market's routes check it.
    if request.method not in SAFE and getattr(g, "token_user", None) is None \
            and not getattr(g, "applicant_key", None):
        return problem_response({"type": "about:blank", "title": "Unauthorized", "status": 401,
                                 "detail": "Writes through the API need 'Authorization: Bearer "
                                           "<token>'."}, 401)
    return None


# ---------------------------------------------------------------------------------------------
# One way for every list: `page`/`per_page` in the query, {total, page, per_page, items} out;
# every successful GET carries a strong ETag and answers If-None-Match with 304.

from .pagination import MAX_PER_PAGE, PageArgs, page_schema, paginate  # noqa: E402,F401


def _etag(response):
    if request.method in ("GET", "HEAD") and response.status_code == 200 \
            and not response.is_streamed and not response.direct_passthrough:
        response.add_etag()
        response = response.make_conditional(request)
    return response


def register_api(api) -> None:
    from .auth.api import blp as auth_blp
    from .campaigns.api import blp as campaigns_blp
    from .certificates.api import blp as certificates_blp
    from .collectives.api import blp as collectives_blp
    from .imports.api import blp as imports_blp
    from .market.api import blp as market_blp
    from .membership.api import blp as membership_blp
    from .parcels.api import blp as parcels_blp
    from .parcels.api import eblp as exports_blp
    from .people.api import blp as people_blp
    from .people.api import hblp as households_blp
    from .rights.api import blp as rights_blp
    from .security import bound_all_ints
    from .settlement.api import blp as settlement_blp
    from .withdrawal.api import wblp as withdrawals_blp

    bound_all_ints()  # before the schemas are turned into the OpenAPI document
    api.spec.components.security_scheme(
        "bearer", {"type": "http", "scheme": "bearer"})
    for blp in (auth_blp, people_blp, collectives_blp, campaigns_blp, certificates_blp,
                settlement_blp, withdrawals_blp, market_blp, membership_blp, households_blp,
                parcels_blp, exports_blp, rights_blp, imports_blp):
        if not getattr(blp, "_bearer_hook", False):  # blueprints are module-level singletons
            blp.before_request(_bearer_for_writes)
            blp.after_request(_etag)
            blp._bearer_hook = True
        csrf.exempt(blp)
        api.register_blueprint(blp, url_prefix="/api" + blp.url_prefix)
