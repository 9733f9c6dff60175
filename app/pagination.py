"""Pages of API lists, the same way everywhere (issue 19): `?page=&per_page=` and an envelope
of total, page, per_page and items.  Infrastructure at the bottom of the house: each feature's
api.py uses it; app/rest.py (the API's composition root) re-exports it."""
from __future__ import annotations

from marshmallow import Schema, fields, validate
from sqlalchemy import func, select

from app.extensions import db

MAX_PER_PAGE = 500


class PageArgs(Schema):
    page = fields.Int(load_default=1, validate=validate.Range(min=1, max=100_000))
    per_page = fields.Int(load_default=50, validate=validate.Range(min=1, max=MAX_PER_PAGE))


def page_schema(item_schema, name: str):
    """The page envelope of a list of `item_schema`."""
    return Schema.from_dict({"total": fields.Int(), "page": fields.Int(),
                             "per_page": fields.Int(),
                             "items": fields.List(fields.Nested(item_schema))}, name=name)


def paginate(stmt, args: dict, scalars: bool = True) -> dict:
    """Run a query function's select statement one page at a time."""
    per = max(1, min(int(args.get("per_page") or 50), MAX_PER_PAGE))
    page = max(1, int(args.get("page") or 1))
    total = db.session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    q = stmt.limit(per).offset((page - 1) * per)
    items = db.session.scalars(q).all() if scalars else db.session.execute(q).all()
    return {"total": total, "page": page, "per_page": per, "items": items}
