"""Issue 19 point 4: open data — township statistics and market results as CSV and as an OCDS
release package that validates against the vendored OCDS 1.1.5 schema; no personal data."""
import csv
import io
import json
from collections import Counter

from sqlalchemy import select

from app.certificates.models import Certificate
from app.collectives.models import Collective
from app.market.models import Contract
from app.opendata import operations as od
from app.parcels.models import Parcel
from app.rights.models import Right
from tests.test_market_contract import _filed, fast  # noqa: F401 — the accelerated clock


def _csv(text):
    return list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))


def test_market_results_csv_and_ocds_validate_with_no_personal_data(dbs, fast, client,  # noqa
                                                                   tmp_path):
    x, aw, winner, c = _filed(dbs)
    filed = dbs.scalars(select(Contract).where(Contract.status.in_(("filed", "terminated")))
                        ).all()
    rows = _csv(client.get("/opendata/market-results.csv").get_data(as_text=True))
    assert len(rows) == len(filed) >= 1
    mine = next(r for r in rows if r["contract_number"] == c.number)
    assert int(mine["annual_price_fen"]) == c.annual_rent_fen
    assert abs(int(mine["price_per_mu_per_year_fen"]) * x.area_mu - c.annual_rent_fen) \
        <= x.area_mu  # rounded to the fen per mu
    assert mine["term_start"] == c.term_start.isoformat() and mine["method"] == aw.method
    body = json.dumps(rows, ensure_ascii=False)
    assert c.transferee_name not in body and winner.applicant.name not in body
    pkg = client.get("/opendata/market-results-ocds.json").get_json()
    assert od.validate_ocds(pkg) == []
    assert len(pkg["releases"]) == len(filed)
    assert c.transferee_name not in json.dumps(pkg, ensure_ascii=False)
    # the validator does find faults: a release without its ocid, a tag off the codelist
    broken = json.loads(json.dumps(pkg))
    del broken["releases"][0]["ocid"]
    broken["releases"][0]["tag"] = ["not-a-tag"]
    assert len(od.validate_ocds(broken)) >= 2
    # the daily run writes the same files
    written = od.export(tmp_path)
    assert written["market-results.csv"] == len(filed)
    assert od.validate_ocds(json.loads((tmp_path / "market-results-ocds.json").read_text())) \
        == []
    page = client.get("/market").get_data(as_text=True)
    assert "/opendata" in page
    assert "price_per_mu_per_year_fen" in client.get("/opendata").get_data(as_text=True)


def test_township_statistics_match_the_register(dbs, client):
    parcels = dbs.execute(select(Collective.fbfbm, Parcel.kind).join(
        Collective, Collective.id == Parcel.collective_id).where(
        Parcel.end_lifespan.is_(None))).all()
    expected = Counter(f[:9] for f, _ in parcels)
    homesteads = Counter(f[:9] for f, k in parcels if k == "homestead")
    rights = Counter(r.fbfbm[:9] for r in dbs.scalars(select(Right).where(
        Right.end_lifespan.is_(None), Right.status == "current", Right.fbfbm.isnot(None))))
    certs = Counter(r.fbfbm[:9] for r in dbs.scalars(select(Right).join(
        Certificate, Certificate.right_id == Right.id).where(Certificate.status == "valid",
                                                             Right.fbfbm.isnot(None))))
    rows = _csv(client.get("/opendata/township-statistics.csv").get_data(as_text=True))
    assert {r["township_code"]: int(r["parcels"]) for r in rows} == dict(expected)
    for r in rows:
        t = r["township_code"]
        assert int(r["homestead_parcels"]) == homesteads[t]
        assert int(r["current_rights"]) == rights[t]
        assert int(r["valid_certificates"]) == certs[t]
