"""Open data (issue 19 point 4): what the law makes public, exported daily — the register's
statistics per township (parcels, area, current rights, valid certificates) and the market's
results (every completed transaction: item, area, term, method, price per mu per year, date;
no personal data), as CSV and as Open Contracting Data Standard 1.1 release packages.

Above the market in the dependency order: it reads the other features' tables, writes none."""
from __future__ import annotations

import csv
import datetime as dt
import io
import json
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from sqlalchemy import text

from app.extensions import db

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_DIR = ROOT / "data" / "ocds"
OCID_PREFIX = "ocds-sanquan-"  # to be replaced by a prefix registered with OCP before publishing
PUBLISHER = {"name": "Sanquan rural property-rights register and transfer-trading market "
                     "(三权 农村产权登记与流转交易市场)"}

TOWNSHIP_FIELDS = ["township_code", "township_name", "parcels", "contract_parcels",
                   "homestead_parcels", "area_m2", "area_mu", "current_rights",
                   "land_contract_rights", "homestead_rights", "management_rights",
                   "valid_certificates", "as_of"]
RESULT_FIELDS = ["contract_number", "listing_id", "township_code", "item_class", "kind",
                 "land_use", "parcels", "area_mu", "term_start", "term_end", "term_years",
                 "method", "annual_price_fen", "price_per_mu_per_year_fen", "award_date",
                 "filed_date", "status"]


def township_statistics(as_of: dt.date | None = None) -> list[dict]:
    """Per township (the first 9 digits of the issuing party's code): current parcels and their
    area, current rights by kind, valid certificates."""
    as_of = as_of or dt.date.today()
    rows = db.session.execute(text("""
        WITH p AS (
            SELECT substr(c.fbfbm, 1, 9) AS t, count(*) AS n,
                   count(*) FILTER (WHERE p.kind = 'contract') AS dk,
                   count(*) FILTER (WHERE p.kind = 'homestead') AS zjd,
                   sum(p.scmj) AS m2, sum(p.scmjm) AS mu
            FROM parcel p JOIN collective c ON c.id = p.collective_id
            WHERE p.end_lifespan IS NULL GROUP BY 1),
        r AS (
            SELECT substr(r.fbfbm, 1, 9) AS t, count(*) AS n,
                   count(*) FILTER (WHERE r.kind = 'land_contract') AS lc,
                   count(*) FILTER (WHERE r.kind = 'homestead') AS hs,
                   count(*) FILTER (WHERE r.kind = 'management') AS mg
            FROM land_right r WHERE r.end_lifespan IS NULL AND r.status = 'current'
              AND r.fbfbm IS NOT NULL GROUP BY 1),
        k AS (
            SELECT substr(r.fbfbm, 1, 9) AS t, count(*) AS n
            FROM certificate x JOIN land_right r ON r.id = x.right_id
            WHERE x.status = 'valid' AND r.fbfbm IS NOT NULL GROUP BY 1)
        SELECT p.t, d.name, p.n, p.dk, p.zjd, p.m2, p.mu, coalesce(r.n, 0) AS rn,
               coalesce(r.lc, 0) AS lc, coalesce(r.hs, 0) AS hs, coalesce(r.mg, 0) AS mg,
               coalesce(k.n, 0) AS kn
        FROM p LEFT JOIN r ON r.t = p.t LEFT JOIN k ON k.t = p.t
        LEFT JOIN division d ON d.code = p.t
        ORDER BY p.t""")).all()
    return [{"township_code": r[0], "township_name": r[1], "parcels": r[2],
             "contract_parcels": r[3], "homestead_parcels": r[4], "area_m2": str(r[5]),
             "area_mu": str(r[6]), "current_rights": r[7], "land_contract_rights": r[8],
             "homestead_rights": r[9], "management_rights": r[10], "valid_certificates": r[11],
             "as_of": as_of.isoformat()} for r in rows]


def _years(start: dt.date, end: dt.date) -> Decimal:
    return (Decimal((end - start).days) / Decimal("365.25")).quantize(Decimal("0.01"))


def market_results() -> list[dict]:
    """Every completed transaction (a contract filed with the issuing party, or filed and later
    terminated): what was transferred, how, for how long and at what price — never who."""
    rows = db.session.execute(text("""
        SELECT c.number, c.listing_id, x.township_code, x.item_class, x.kind, x.land_use,
               (SELECT count(*) FROM market_listing_parcel lp WHERE lp.listing_id = x.id) AS np,
               x.area_mu, c.term_start, c.term_end, a.method, c.annual_rent_fen, a.notice_on,
               c.filed_at, c.status
        FROM market_contract c JOIN market_listing x ON x.id = c.listing_id
        JOIN market_award a ON a.id = c.award_id
        WHERE c.status IN ('filed', 'terminated') AND c.filed_at IS NOT NULL
        ORDER BY c.filed_at, c.id""")).all()
    out = []
    for r in rows:
        area = Decimal(r.area_mu or 0)
        per_mu = int((Decimal(r.annual_rent_fen) / area).quantize(Decimal(1), ROUND_HALF_UP)) \
            if area > 0 else None
        out.append({"contract_number": r.number, "listing_id": r.listing_id,
                    "township_code": r.township_code, "item_class": r.item_class,
                    "kind": r.kind, "land_use": r.land_use, "parcels": r.np,
                    "area_mu": str(area), "term_start": r.term_start.isoformat(),
                    "term_end": r.term_end.isoformat(),
                    "term_years": str(_years(r.term_start, r.term_end)), "method": r.method,
                    "annual_price_fen": int(r.annual_rent_fen),
                    "price_per_mu_per_year_fen": per_mu,
                    "award_date": r.notice_on.isoformat(),
                    "filed_date": r.filed_at.date().isoformat(), "status": r.status})
    return out


def to_csv(rows: list[dict], fields: list[str]) -> str:
    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: "" if r.get(k) is None else r[k] for k in fields})
    return out.getvalue()


def _fen_to_yuan(fen: int) -> float:
    # OCDS amounts are numbers; yuan with two decimals, computed from integer fen.
    return float(Decimal(fen) / 100)


METHODS = {"auction": ("open", "auction"), "tender": ("selective", "tender"),
           "agreement": ("direct", "agreement"), "listing": ("open", "listing")}


def ocds_release_package(results: list[dict], published: dt.datetime, uri: str) -> dict:
    """An OCDS 1.1 release package: one release (tag contract) per completed transaction."""
    releases = []
    for r in results:
        ocid = f"{OCID_PREFIX}{r['contract_number']}"
        method, detail = METHODS.get(r["method"], ("open", r["method"]))
        amount = {"amount": _fen_to_yuan(r["annual_price_fen"]), "currency": "CNY"}
        item = {"id": "1", "description": f"{r['item_class']} {r['kind']} ({r['land_use']}), "
                                          f"{r['parcels']} parcels, township {r['township_code']}",
                "quantity": float(Decimal(r["area_mu"])), "unit": {"name": "mu (亩)"}}
        releases.append({
            "ocid": ocid, "id": f"{ocid}-contract-{r['filed_date']}",
            "date": f"{r['filed_date']}T00:00:00+08:00", "tag": ["contract"],
            "initiationType": "tender", "language": "zh",
            "tender": {"id": str(r["listing_id"]), "procurementMethod": method,
                       "procurementMethodDetails": detail, "items": [item]},
            "awards": [{"id": f"{r['listing_id']}-award", "status": "active",
                        "date": f"{r['award_date']}T00:00:00+08:00", "value": amount}],
            "contracts": [{
                "id": r["contract_number"], "awardID": f"{r['listing_id']}-award",
                "status": "terminated" if r["status"] == "terminated" else "active",
                "period": {"startDate": f"{r['term_start']}T00:00:00+08:00",
                           "endDate": f"{r['term_end']}T00:00:00+08:00"},
                "value": amount, "items": [item],
                "dateSigned": f"{r['filed_date']}T00:00:00+08:00"}],
        })
    return {"uri": uri, "version": "1.1",
            "publishedDate": published.replace(microsecond=0).isoformat(),
            "publisher": PUBLISHER,
            "license": "https://creativecommons.org/licenses/by/4.0/",
            "publicationPolicy": uri.rsplit("/", 1)[0] + "/",
            "releases": releases}


def validate_ocds(package: dict) -> list[str]:
    """Errors of the package against the vendored OCDS 1.1.5 schemas (empty when valid)."""
    import jsonschema
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT4

    pkg = json.loads((SCHEMA_DIR / "release-package-schema.json").read_text())
    rel = json.loads((SCHEMA_DIR / "release-schema.json").read_text())
    registry = Registry().with_resources([
        (pkg["id"], Resource.from_contents(pkg, default_specification=DRAFT4)),
        (rel["id"], Resource.from_contents(rel, default_specification=DRAFT4))])
    v = jsonschema.Draft4Validator(pkg, registry=registry,
                                   format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in v.iter_errors(package)]


FILES = ("township-statistics.csv", "market-results.csv", "market-results-ocds.json")


def export(folder: Path, base_url: str = "", now: dt.datetime | None = None) -> dict:
    """Write the open-data files into `folder` (the daily run); returns rows per file."""
    now = now or dt.datetime.now(dt.UTC)
    folder.mkdir(parents=True, exist_ok=True)
    stats = township_statistics(now.date())
    results = market_results()
    (folder / FILES[0]).write_text("\ufeff" + to_csv(stats, TOWNSHIP_FIELDS), encoding="utf-8")
    (folder / FILES[1]).write_text("\ufeff" + to_csv(results, RESULT_FIELDS), encoding="utf-8")
    written = {FILES[0]: len(stats), FILES[1]: len(results), FILES[2]: 0}
    if results:  # a release package holds at least one release
        pkg = ocds_release_package(results, now, f"{base_url.rstrip('/')}/opendata/{FILES[2]}")
        errors = validate_ocds(pkg)
        if errors:
            raise ValueError("OCDS package invalid: " + "; ".join(errors[:5]))
        (folder / FILES[2]).write_text(json.dumps(pkg, ensure_ascii=False, indent=1),
                                       encoding="utf-8")
        written[FILES[2]] = len(results)
    return written
