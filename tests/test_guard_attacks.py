"""Fresh attacks on the rights guard (issue 11), by a pair of eyes that did not build it.

Each test is an attack that got through before the fix next to it: the expectation follows from
the input (a text that ties settling to giving up a right is refused; a proof the database reads
must be the real record, not one the app's own session made up)."""
import base64 as _b64
import datetime as dt

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from app import guardtext
from app.audit.models import AuditLog
from app.errors import DomainError
from app.people import operations as people
from app.people.models import HouseholdMember
from app.settlement import operations as settlement
from app.withdrawal import operations as withdrawals
from tests.conftest import user
from tests.test_guard_adversarial_db import (  # noqa: F401  (fixtures)
    _consent_all,
    _settled_40_days_ago,
    contract,
    holder,
)
from tests.test_guard_adversarial_text import _application, _contract_cert
from tests.test_settlement import (
    certified,  # noqa: F401  (fixture)
    )

TODAY = dt.date.today()


# ------------------------------------------------------------ the database: shadowing tables

@pytest.mark.parametrize("table, ground, cols", [
    ("court_judgment", "court_judgment",
     "id bigint, right_uid bigint, judged_on date"),
    ("expropriation", "expropriation",
     "id bigint, right_uid bigint, compensation numeric"),
])
def test_a_temp_table_cannot_stand_in_for_the_proof_record(dbs, contract, table, ground, cols):  # noqa: F811
    """The app role may create temporary tables; one named like a proof table came first in the
    trigger functions' search path, so a made-up judgment or expropriation in the session's own
    pg_temp ended a right "lawfully".  The guard's functions now read only the real tables."""
    _, r, _ = contract
    with pytest.raises(DBAPIError, match="right.end.evidence"):
        with dbs.begin_nested():
            dbs.execute(text(f"CREATE TEMP TABLE {table} ({cols}) ON COMMIT DROP"))
            vals = ("99999, :u, current_date" if table == "court_judgment"
                    else "99999, :u, 1000")
            dbs.execute(text(f"INSERT INTO pg_temp.{table} VALUES ({vals})"), {"u": r.uid})
            dbs.execute(text("UPDATE land_right SET status = 'ended', end_ground = :g, "
                             "ended_on = current_date, end_record_id = 99999 WHERE id = :i"),
                        {"g": ground, "i": r.id})
    dbs.expire_all()
    assert dbs.execute(text("SELECT status FROM land_right WHERE id = :i"),
                       {"i": r.id}).scalar() == "current"



def test_every_function_of_the_schema_has_its_search_path_pinned(dbs):
    """So that no later migration brings back the shadowing: a function of the schema that
    reads a table by its bare name must not find the session's temporary one first."""
    loose = dbs.execute(text("""
        SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = 'public' AND p.prokind IN ('f', 'p')
          AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                          AND d.objid = p.oid AND d.deptype = 'e')
          AND NOT coalesce(p.proconfig, '{}') @> ARRAY['search_path=public, pg_temp']
        ORDER BY 1""")).scalars().all()
    assert loose == []

def test_a_temp_household_cannot_make_the_holder_extinct(dbs, contract):  # noqa: F811
    hh, r, _ = contract
    with pytest.raises(DBAPIError, match="right.end.evidence"):
        with dbs.begin_nested():
            dbs.execute(text("CREATE TEMP TABLE household (cbfbm text, ended_on date, "
                             "end_ground text) ON COMMIT DROP"))
            dbs.execute(text("INSERT INTO pg_temp.household VALUES (:c, current_date, "
                             "'all_members_left')"), {"c": hh.cbfbm})
            dbs.execute(text("UPDATE land_right SET status = 'ended', end_ground = "
                             "'holder_extinct', ended_on = current_date WHERE id = :i"),
                        {"i": r.id})



# ------------------------------------------------------------ the detector: fresh wordings
# Written by the attacker, none of them in the tuned corpus: spoken forms (把地交了, 地不要了),
# dialect and paper names (宅基证, 承包本, 归队里), pinyin initials (TD 土地, ZJD 宅基地),
# Japanese kanji and kana, Cyrillic and Greek look-alike letters, variant characters (囬),
# emoji, right-to-left and combining marks between characters, base64 and hex.  FRESH_A was
# written before any change: 22/65 caught (0/2 of KNOWN_MISSES), 10/50 false positives
# (接收地址 read as 收地,
# 提交地址证明 as 交地).  FRESH_B was written after the first round of lexicon additions, as a
# check on them: 3/20 caught before the second round.  Each set is refused under the
# settlement policy (no surrender, no condition).

FRESH_A = [
    '落户前请先把村里那几亩田交给村委',
    '先把责任田退掉再来办',
    '承包田退掉后方可办理',
    '把地还给集体后再批',
    '宅基地让给村里，才能迁户口',
    '老屋拆掉后才可落户',
    '把房子腾空交村里',
    '须签署自愿退出土地承包经营权承诺书',
    '附：土地承包经营权自愿退出协议',
    '分红以后就没有了',
    '以后不能再领村里的分红',
    '村里的股金清退',
    '股份退掉',
    '地不要了就能办',
    '把地交出来',
    '把田让出来',
    '宅基地上交给村',
    '需提供退地证明',
    '需提供宅基地退出确认书',
    '请附上承包地退出协议',
    'TD退出后办理',
    'ZJD交回后办理',
    'tuì dì hòu bàn lǐ',
    'tuidi houbanli',
    '退\u3000地',
    '退\u200d地',
    '退́地',
    '退🌾地后办',
    '退\u202e地',
    '放弃土地承包經營權',
    '放棄宅基地',
    '交囬土地',
    '返還土地',
    '土地を返還',
    '宅地の返還を条件とする',
    'ѕurrender the land',
    'gіve up the land',
    'rеlinquish the homestead',
    'surrеnder',
    'g i v e   u p the contract',
    'e98080e59cb0',
    '5Lul5Zyw5o2i5oi3',
    '6YCA5Ye65om/5YyF5Zyw',
    '以三亩地换一个城镇户口',
    '拿宅子换楼房',
    '用承包田换社保',
    '户口可以迁，地要交',
    '要进城就得把地交了',
    '进城的话地就要收走',
    '宅基地收走',
    '承包地收走',
    '宅基地归村集体',
    '土地归还村集体所有',
    '分红资格没有了',
    '不再给分红',
    '不发分红了',
    '分红停掉',
    '村民待遇取消',
    '退出承包地 (土地)',
    '放弃承包地 for hukou',
    'lose the homestead',
    'give back the land',
    'the land goes back to the village',
    'his contract land is taken back',
    'renounce the land contract',
]

FRESH_A_NEUTRAL = [
    '申请人已提交户口簿复印件',
    '材料齐全，准予落户',
    '经核实，申请人在城镇有合法稳定住所',
    '申请人在本市连续缴纳社保满一年',
    '请补充提供居住证',
    '户口簿首页缺失，请补正',
    '申请人的土地承包经营权依法保留',
    '宅基地使用权不受影响',
    '继续享有集体收益分配权',
    '承包地可依法流转',
    '房屋租赁合同已备案',
    '购房合同编号 2024-0015',
    '派出所：城关派出所',
    '居住地址：幸福路12号',
    '单位：县农机站',
    '审核人：张三',
    '已电话回访申请人',
    '证书污损，申请换发',
    '证书遗失，已登报声明',
    '权证信息有误，更正面积',
    '退休人员随迁',
    '交通便利',
    '地址：退思园路5号',
    '土地面积 3.2 亩',
    '收地址变更通知',
    '退役军人，优先办理',
    '交回旧身份证',
    'give the applicant a call',
    'return receipt attached',
    'the applicant waives nothing',
    '接收地址：城关镇幸福路8号',
    '请提交地址证明',
    '回收地膜补贴已发放',
    '还地址栏空白，请补填',
    '提交地籍调查表',
    '申请人已递交地址变更材料',
    '移交地方档案馆',
    '收田租的事与本案无关',
    '退休证复印件一份',
    '交通补贴',
    '腾讯会议视频核验',
    '股金服务部开具的证明',
    '分红已于年底发放',
    '宅基地面积120平方米',
    '承包地位于村东',
    '三亩地由本户继续经营',
    '本户土地承包经营权证号：140404',
    'TD-2024-001号文件',
    '原户籍地址：上党区',
    'ZJD编号 003',
]

FRESH_B = [
    '户口迁了，村里那份地就收回去了',
    '宅子得先交给组里',
    '办完落户把承包本交上来',
    '回村的地以后归队里',
    '地契上交后给你上户口',
    '分红从明年起不算你家的了',
    '进城了股份就清零',
    '房子推了才给迁',
    '先签退出协议再说落户的事',
    '宅基证交上来',
    '把承包证交回来',
    '责任地转给村里不要钱',
    '以地易城镇户籍',
    '拿老宅换城里一套房',
    '地归公后再办户口',
    '土地归公',
    '宅基地无偿归公',
    '交出土地經營權',
    '放弃农村股份分红',
    '收益分配资格随之消灭',
]

FRESH_B_NEUTRAL = [
    '请于周五前提交居住证明',
    '申请人现住幸福小区3栋',
    '已核验房产证',
    '派出所意见：同意',
    '本人承包地继续由本户经营',
    '户口迁入地：城关镇',
    '工作单位：县第一中学',
    '补交社保缴费记录',
    '申请材料退回补正',
    '退回申请人补充材料',
    '交回旧户口簿',
    '股份合作社年度分红照常发放',
    '宅基地上的房屋已出租',
    '已归档',
    '地块编码140404001',
    '请接收地址变更通知',
]

# still missed, kept as known gaps: digits between the characters of a two-character word
KNOWN_MISSES = ["退 ⑩ 地", "退1地"]
# and one false positive: an English negation after the verb ("waives nothing")
KNOWN_FALSE = ["the applicant waives nothing"]


def _rates(hits, neutral):
    missed = [w for w in hits if not guardtext.check("settlement", w)]
    false = [w for w in neutral if guardtext.check("settlement", w)]
    return missed, false


def test_fresh_wordings_are_caught_and_neutral_clerk_text_passes():
    out = []
    for name, hits, neutral in (("A", FRESH_A, FRESH_A_NEUTRAL), ("B", FRESH_B, FRESH_B_NEUTRAL)):
        missed, false = _rates(hits, neutral)
        out.append(f"fresh {name}: detection {len(hits) - len(missed)}/{len(hits)}; "
                   f"false positives {len(false)}/{len(neutral)}; missed {missed}; "
                   f"false {false}")
    print("\n".join(out))
    a_missed, a_false = _rates(FRESH_A, FRESH_A_NEUTRAL)
    b_missed, b_false = _rates(FRESH_B, FRESH_B_NEUTRAL)
    assert set(a_false) <= set(KNOWN_FALSE) and not b_false
    assert len(a_missed) == 0
    assert len(b_missed) <= 2  # 回村的地以后归队里, 以地易城镇户籍: the known gaps of set B


def test_encoded_and_look_alike_spellings_are_read():
    assert guardtext.check("settlement", _b64.b64encode("以地换户".encode()).decode())
    assert guardtext.check("settlement", "退地".encode().hex())
    assert guardtext.check("settlement", "g\u0456ve up the land")  # Cyrillic і
    assert guardtext.check("settlement", "\u0455urrender")          # Cyrillic ѕ
    # … while ordinary numbers and codes stay what they are
    assert not guardtext.check("settlement", "证号 140404202600123 编码 deadbeef")
    assert not guardtext.check("settlement", "cGFzc3dvcmQ=")  # base64 of plain ASCII


# ------------------------------------------------------------ the withdrawal

def test_a_consent_document_name_is_read_by_the_detector(dbs, holder):  # noqa: F811
    """The statement's file name was checked, the consents' file names were not: an officer
    recorded a co-holder's agreement as "以地换户同意书.pdf"."""
    hh, r = holder
    w = withdrawals.start(user("farmer"), r, "own_account")
    person = withdrawals.missing_consents(w, TODAY)
    assert person, "the demo holder household must have another adult co-holder to consent"
    with pytest.raises(DomainError) as e:
        withdrawals.consent(user("officer"), w, person[0], b"%PDF agreement",
                            document_name="以地换户同意书.pdf")
    assert e.value.code == "guard.text"
    assert dbs.scalars(select(AuditLog).where(
        AuditLog.action == "withdrawal.refused", AuditLog.object_id == str(w.id),
        AuditLog.changes["field"].astext == "document_name")).all()
    # the database refuses the same name written past the operation
    with pytest.raises(DBAPIError, match="ck_withdrawal_consent_text_guard"):
        with dbs.begin_nested():
            dbs.execute(text("""INSERT INTO withdrawal_consent (withdrawal_id, person_id,
                signed_on, document_sha256, recorded_by, via, document, document_filename)
                VALUES (:w, :p, current_date, encode(sha256('x'::bytea), 'hex'), 'officer',
                'in_person', 'x'::bytea, '以地换户同意书.pdf')"""),
                        {"w": w.id, "p": person[0].id})


def _member_left(dbs, hh, person_id):
    dbs.execute(text("""UPDATE household_member SET left_on = current_date - 30,
        end_ground = 'moved_out' WHERE household_id = :h AND person_id = :p
        AND left_on IS NULL"""), {"h": hh.id, "p": person_id})


def test_a_withdrawal_inserted_in_sql_after_a_settlement_is_flagged_anyway(dbs, holder):  # noqa: F811
    """The flag was set by the operation only: the same row written on the app's connection
    right after a settlement in town went on without any check of voluntariness."""
    hh, r = holder
    _settled_40_days_ago(dbs, hh.head_person_id, officer="bureau")
    wid = dbs.execute(text("""INSERT INTO withdrawal (right_uid, right_kind, household_code,
        county_code, started_by, started_via, started_on, land_to, cooling_until, flagged)
        VALUES (:u, 'land_contract', :h, :c, 'farmer', 'own_account', current_date,
        'collective', current_date + 30, false) RETURNING id"""),
        {"u": r.uid, "h": hh.cbfbm, "c": hh.cbfbm[:6]}).scalar()
    row = dbs.execute(text("SELECT flagged, flag_reason FROM withdrawal WHERE id = :i"),
                      {"i": wid}).one()
    assert row.flagged is True and "settled in town" in row.flag_reason


# ------------------------------------------------------------ free text written in SQL

def assert_sql_refused(dbs, sql, match, params):
    with pytest.raises(DBAPIError, match=match):
        with dbs.begin_nested():
            dbs.execute(text(sql), params)


def test_a_settlement_note_with_a_trade_is_refused_in_sql_too(dbs, contract):  # noqa: F811
    """The database's backstop on settlement text read surrenders only: a decision note
    "准予落户，附条件：以宅换房" (a trade, not a surrender) was accepted on the app's
    connection."""
    hh, _, _ = contract
    _settled_40_days_ago(dbs, hh.head_person_id)
    app_id = dbs.execute(text("SELECT max(id) FROM settlement_application")).scalar()
    for note in ("准予落户，附条件：以宅换房", "以地换保", "用宅基地换户口", "以地換房"):
        assert_sql_refused(dbs, "UPDATE settlement_application SET decision_note = :n WHERE id = :i",
                     "ck_settlement_application_condition_guard", {"n": note, "i": app_id})
    # the rule stated is no trade: the database lets it through
    with dbs.begin_nested():
        dbs.execute(text("UPDATE settlement_application SET decision_note = :n WHERE id = :i"),
                    {"n": "保留承包地不作为落户条件", "i": app_id})
    assert_sql_refused(dbs, "INSERT INTO hukou_move (person_id, application_id, to_division_code, "
                      "to_address, moved_on, moved_by, txid) VALUES (:p, :a, '140403', "
                      "'城区某小区（已交回承包地）', current_date, 'hukou', 0)",
                 "ck_hukou_move_text_guard", {"p": hh.head_person_id, "a": app_id})


def test_a_certificate_cancelled_as_an_error_cannot_say_the_land_was_handed_back(
        dbs, certified):  # noqa: F811
    """end_ground 'error_corrected' looks lawful; its reason was read for settling and the
    hukou only, so "交回土地承包经营权证" (a surrender) cancelled the certificate of a current
    right in SQL."""
    cert = _contract_cert(dbs, certified)
    for reason in ("交回土地承包经营权证", "自愿放弃承包地，证书作废", "以地换房"):
        assert_sql_refused(dbs, "UPDATE certificate SET status = 'cancelled', ended_at = now(), "
                          "ended_by = 'x', end_reason = :r, end_ground = 'error_corrected', "
                          "end_reference = '更正-1' WHERE id = :i",
                     "ck_certificate_end_reason_surrender_guard", {"r": reason, "i": cert.id})


# ------------------------------------------------------------ the hukou move's transaction

def test_a_hukou_move_cannot_hide_its_transaction(dbs, contract):  # noqa: F811
    """The guard "a transaction that moves a hukou changes nothing else" finds the move by its
    txid column, which defaulted to txid_current() but took any value: a move written today
    with txid 0 let the same transaction change the household's places."""
    hh, _, _ = contract
    m = hh.current_members[0]
    with pytest.raises(DBAPIError, match="settlement.rights_guard"):
        with dbs.begin_nested():
            dbs.execute(text("""INSERT INTO hukou_move (person_id, to_division_code, to_address,
                moved_on, moved_by, txid) VALUES (:p, '140403', '城区某小区', current_date,
                'hukou', 0)"""), {"p": m.person_id})
            dbs.execute(text("UPDATE household_member SET left_on = current_date, end_ground = "
                             "'death' WHERE id = :i"), {"i": m.id})



# ------------------------------------------------------------ the rights-kept notice

def test_the_notice_does_not_say_all_is_kept_when_a_household_place_has_ended(
        dbs, login_as, certified):  # noqa: F811
    """The notice listed the households a person is in today and the rights and memberships
    that ended: a place in the contracting household that ended (here on the loss of
    nationality) vanished from the notice, which still said "you keep
    every right listed below"."""
    hh = certified
    a = _application(dbs, hh)
    pid = next(m.person_id for m in a.members
               if m.person_id != hh.head_person_id) if len(a.members) > 1 else \
        a.members[0].person_id
    place = dbs.scalar(select(HouseholdMember).where(HouseholdMember.person_id == pid,
                                                     HouseholdMember.left_on.is_(None)))
    people.end_place("bureau", place, "nationality_lost", TODAY, reason="丧失国籍")
    settlement.approve("hukou", a, note="准予落户")
    kept = settlement.rights_kept(a)
    person = next(x for x in kept["people"] if x["person"].id == pid)
    assert kept["all_kept"] is False
    assert [h["cbfbm"] for h in person["households_ended"]] == [hh.cbfbm]
    body = login_as("hukou").get(f"/settlement/{a.id}/notice").get_data(as_text=True)
    assert "您保留下列各项权利" not in body and hh.cbfbm in body


# ------------------------------------------------------------ membership

def _active_membership(dbs):
    from app.collectives.models import Membership

    return dbs.scalars(select(Membership).where(Membership.status == "active")
                       .order_by(Membership.id)).first()


@pytest.mark.parametrize("article", ["17条（进城落户者）", "第27条 户口迁出", "art 17 town hukou"])
def test_the_cited_article_is_an_article_not_a_disguise(dbs, article):
    """law_or_charter needs a named law and an article: the article was free text that no
    check read, so "17条（进城落户者）" ended a membership for settling in town."""
    from app.collectives import operations as collectives

    m = _active_membership(dbs)
    with pytest.raises(DomainError):
        collectives.end_membership("bureau", m, "law_or_charter", TODAY, "依法终止",
                                   reason="成员资格认定", law="农村集体经济组织法",
                                   article=article)
    assert m.status == "active"
    with pytest.raises(DBAPIError, match="ck_membership_end_article_format"):
        with dbs.begin_nested():
            dbs.execute(text("""UPDATE membership SET status = 'ended', ended_on = current_date,
                end_ground = 'law_or_charter', end_law = '农村集体经济组织法', end_article = :a
                WHERE id = :i"""), {"a": article, "i": m.id})


@pytest.mark.parametrize("clause", ["全家搬到县里住的，成员资格终止", "搬离本村满两年的不再是成员",
                                    "长期在外地生活者，资格终止"])
def test_a_charter_clause_in_plain_speech_about_moving_away_is_refused(dbs, clause):
    from app.collectives import operations as collectives

    m = _active_membership(dbs)
    with pytest.raises(DomainError) as e:
        collectives.add_charter_clause(user("officer"), m.collective, "第九条", clause,
                                       dt.date(2024, 1, 1), ends_membership=True,
                                       reason="章程修订")
    assert e.value.code == "charter.clause.unlawful"


def test_a_lawful_article_still_ends_a_membership(dbs):
    from app.collectives import operations as collectives

    m = _active_membership(dbs)
    collectives.end_membership("bureau", m, "law_or_charter", TODAY, "依法终止",
                               reason="成员资格认定", law="农村集体经济组织法",
                               article="第十七条第二款")
    assert m.status == "ended" and m.end_article == "第十七条第二款"



@pytest.mark.parametrize("interview", ["村干部说不退地就不给落户，我才签的",
                                       "他们讲不交地不给办户口"])
def test_a_check_whose_interview_records_the_trade_does_not_pass(dbs, holder, interview):  # noqa: F811
    """The voluntariness check read only the lexicon's trades: an interview in which the holder
    says the land was the price of the hukou ("不退地就不给落户") passed the check and the
    withdrawal went on to its cooling-off period."""
    from decimal import Decimal

    hh, r = holder
    _settled_40_days_ago(dbs, hh.head_person_id, officer="bureau")
    w = withdrawals.start(user("farmer"), r, "own_account")
    _consent_all(w, "officer")
    withdrawals.agree_compensation(user("admin"), w, Decimal("50000"))
    with pytest.raises(DomainError) as e:
        withdrawals.check(user("officer2"), w, interview)
    assert e.value.code == "guard.text"
    assert w.checked_by is None and w.status == "check"
