"""Demo: confirmation (确权) in three states — one village confirmed with certificates, one in
its public notice with an objection open, a survey delivery waiting with faults to correct."""
from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from app.campaigns import operations as campaigns
from app.certificates import operations as certificates
from app.errors import DomainError
from app.extensions import db
from app.imports import operations as imports
from app.rights import operations as rights

from .common import done, fields_of, groups, households, mark, villages

CERTIFIED_HOUSEHOLDS = 6  # certificates for the first households of the farmer's group: fast


def confirmed_village(village_code: str) -> dict:
    """Every group of the village through notice and registration (登簿); rights registered;
    certificates for the first households of the first group (the farmer's among them)."""
    if done("campaigns.confirmed"):
        return {}
    start = dt.date.today() - dt.timedelta(days=campaigns.notice_days() + 20)
    made = {"campaigns": 0, "land_contract": 0, "homestead": 0, "certificates": 0, "refused": 0}
    for n, g in enumerate(groups(village_code)):
        c = campaigns.open_campaign("bureau", g.fbfbm, reason="确权登记颁证（演示）")
        campaigns.publish_notice("bureau", c, start=start)
        certify = []
        for hh in households(g):
            fields = fields_of(hh.cbfbm)
            try:
                if fields:
                    r = rights.register_land_contract(
                        "bureau", hh.cbfbm, hh.cbfbm + "J", [(p, p.scmj) for p in fields],
                        dt.date(1999, 1, 1), dt.date(2058, 12, 31), reason="确权登记（演示）")
                    made["land_contract"] += 1
                    if n == 0 and len(certify) < 2 * CERTIFIED_HOUSEHOLDS:
                        certify.append(r)
                for p in fields_of(hh.cbfbm, "homestead")[:1]:
                    h = rights.register_homestead("bureau", hh.cbfbm, p, reason="确权登记（演示）")
                    made["homestead"] += 1
                    if n == 0 and len(certify) < 2 * CERTIFIED_HOUSEHOLDS:
                        certify.append(h)
            except DomainError:  # a homestead over the county cap, on basic farmland…
                made["refused"] += 1
        campaigns.register("bureau", c)
        for r in certify:
            certificates.issue("bureau", r, campaign_id=c.id)
            made["certificates"] += 1
        made["campaigns"] += 1
    mark("campaigns.confirmed", made)
    db.session.commit()
    return made


def village_in_notice(village_code: str) -> dict:
    """The first group of the village in its public notice, one objection open, one dismissed."""
    if done("campaigns.notice"):
        return {}
    g = groups(village_code)[0]
    c = campaigns.open_campaign("bureau", g.fbfbm, reason="确权登记颁证（演示）")
    start = dt.date.today() - dt.timedelta(days=2)
    campaigns.publish_notice("bureau", c, start=start)
    hh = households(g)
    p = fields_of(hh[0].cbfbm)[0]
    campaigns.lodge_objection("bureau", c, "area", "公示面积比实际少约半亩，请复测",
                              hh[0].name[:-1] or "村民", p.code)
    o = campaigns.lodge_objection("bureau", c, "holder", "该地块东邻应为本户",
                                  hh[1].name[:-1] or "村民", fields_of(hh[1].cbfbm)[0].code)
    campaigns.dismiss("bureau", o, "经核对承包合同和台账，四至无误")
    made = {"campaign": c.id, "objections_open": 1}
    mark("campaigns.notice", made)
    db.session.commit()
    return made


def sample_delivery() -> Path | None:
    """The sample village's survey delivery (NY/T 2539): SANQUAN_SAMPLE_DELIVERY, else the
    shared data folder beside the checkout."""
    env = os.environ.get("SANQUAN_SAMPLE_DELIVERY")
    if env:
        return Path(env) if Path(env).is_dir() else None
    here = Path(__file__).resolve()
    for p in here.parents:
        cand = p / "shared" / "data" / "village-sample"
        if cand.is_dir():
            return cand
    return None


def delivery_with_faults() -> dict:
    """A survey delivery staged and checked, its faults waiting for the bureau to correct."""
    if done("campaigns.delivery"):
        return {}
    path = sample_delivery()
    if path is None:
        return {"delivery": "no sample delivery found (set SANQUAN_SAMPLE_DELIVERY)"}

    batch = imports.run("bureau", path, source_name="村级确权成果（演示）")
    made = {"batch": batch.id, "faults": len(imports.faults(batch.id))}
    mark("campaigns.delivery", made)
    db.session.commit()
    return made


def load() -> dict:
    v = villages()
    out = {}
    out.update(confirmed_village(v[0]) or {})
    if len(v) > 1:
        out.update(village_in_notice(v[1]) or {})
    out.update(delivery_with_faults() or {})
    return out
