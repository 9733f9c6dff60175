"""A confirmation campaign for one villagers' group of the sample: notice → an objection upheld
(with its correction) and one dismissed → registration of the group's rights."""
import datetime as dt

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from app.campaigns import operations as ops
from app.errors import DomainError
from app.imports import operations as imports
from app.parcels import operations as parcel_ops
from app.parcels.models import Parcel
from app.rights.models import Right
from tests.test_import_sample import SAMPLE

GROUP = "14040410120101"


@pytest.fixture()
def campaign(dbs):
    batch = imports.run("bureau", SAMPLE)
    imports.accept("bureau", batch, valid_part=True)
    c = ops.open_campaign("bureau", GROUP, batch.id, "第一村民小组确权")
    return c


def test_notice_objections_and_registration(campaign, dbs):
    c = campaign
    start = dt.date.today() - dt.timedelta(days=8)
    ops.publish_notice("bureau", c, start=start)
    assert c.notice_end == start + dt.timedelta(days=7)
    listing = ops.notice_list(c)
    assert listing and all(r.code.startswith(GROUP) or (r.household_code or "").startswith(GROUP)
                           for r in listing)
    p = dbs.scalars(select(Parcel).where(Parcel.code.like(GROUP + "%"),
                                         Parcel.kind == "contract")).first()
    mid = start + dt.timedelta(days=3)
    area = ops.lodge_objection("bureau", c, "area", "面积少量了", "村民甲", p.code, today=mid)
    holder = ops.lodge_objection("bureau", c, "holder", "不是他家的", "村民乙", p.code, today=mid)
    with pytest.raises(DomainError) as e:  # too late
        ops.lodge_objection("bureau", c, "area", "x", "丙", p.code, today=c.notice_end +
                            dt.timedelta(days=1))
    assert e.value.code == "campaign.not_in_notice"
    with pytest.raises(DomainError) as e:
        ops.register("bureau", c)
    assert e.value.code == "campaign.open_objection"
    with pytest.raises(DomainError) as e:  # upheld needs its correction in the register
        ops.uphold("bureau", area, "复测属实")
    assert e.value.code == "campaign.objection.correction"
    parcel_ops.amend("bureau", p, "异议复核：地块名称更正", name="东沟地")
    ops.uphold("bureau", area, "复测属实，已更正")
    with pytest.raises(DomainError):
        ops.dismiss("bureau", holder, " ")
    ops.dismiss("bureau", holder, "经核查合同与户籍，权利人无误")
    made = ops.register("bureau", c)
    assert made["land_contract"] > 100 and made["homestead"] > 50
    assert c.status == "registered" and c.registrar == "bureau"
    rights = dbs.scalars(select(Right).where(Right.fbfbm == GROUP,
                                             Right.end_lifespan.is_(None))).all()
    assert {r.kind for r in rights} == {"land_contract", "homestead"}
    assert not dbs.scalars(select(Right).where(Right.fbfbm != GROUP,
                                               Right.contract_code.like("1404041012%"))).all()


def test_cannot_register_before_the_notice_has_run(campaign, dbs):
    ops.publish_notice("bureau", campaign)  # starts today, 7 days
    with pytest.raises(DomainError) as e:
        ops.register("bureau", campaign)
    assert e.value.code == "campaign.notice"
    with pytest.raises(DBAPIError, match="campaign.notice"):
        with dbs.begin_nested():
            dbs.execute(text("UPDATE campaign SET status = 'registered', registrar = 'x', "
                             "registered_at = now() WHERE id = :i"), {"i": campaign.id})


def test_database_refuses_registering_with_an_open_objection(campaign, dbs):
    start = dt.date.today() - dt.timedelta(days=10)
    ops.publish_notice("bureau", campaign, start=start)
    ops.lodge_objection("bureau", campaign, "boundary", "四至不对", "村民丁",
                        today=start + dt.timedelta(days=1))
    with pytest.raises(DBAPIError, match="objection is open"):
        with dbs.begin_nested():
            dbs.execute(text("UPDATE campaign SET status = 'registered', registrar = 'x', "
                             "registered_at = now() WHERE id = :i"), {"i": campaign.id})
