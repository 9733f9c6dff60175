"""The rights guard's text detector (app/guardtext.py) against a corpus of wordings each way.

HITS say, one way or another, that a right is given up (or that settling is traded for it);
NEUTRAL texts are what settlement, membership and certificate records lawfully say — including
statements of the rule itself.  Every base wording is augmented the ways the issue saw the old
keyword check fooled: traditional characters, spaces, full-width forms, zero-width characters,
HTML entities (once and twice), URL-encoding (once and twice), a mix, and pinyin (with and
without tone marks).  The rates are printed (pytest -s) and written to
tests/guardtext_rates.txt."""
from __future__ import annotations

import html
from pathlib import Path
from urllib.parse import quote

import opencc
import pytest
from pypinyin import Style, lazy_pinyin

from app import guardtext

HITS = [
    # the wordings
    "不予落户：未退地", "准予落户，附条件：以地换户", "退地", "以地换户", "腾退旧宅",
    "不再参与村集体分红", "退出承包地.pdf", "进城落户的成员丧失成员资格", "户口迁出本村即不再是成员",
    "已进城落户，交回土地承包经营权证", "落户后须退出集体收益分配", "交回承包地后办理",
    # land-contract right
    "申请人须先交回承包地", "请将承包地交回村集体", "落户前退还承包地", "自愿放弃土地承包经营权",
    "承包地由集体收回", "收回其土地承包经营权", "同意放弃村里的承包地", "注销土地承包经营权证",
    "解除承包合同后办理", "退田进城", "交地落户", "交出责任田", "上交土地", "退出土地承包经营权",
    "放弃口粮田", "土地交回集体统一经营", "承包地退回村委会", "腾出承包地",
    # homestead
    "退出宅基地", "腾退宅基地后迁户", "交回宅基地使用权", "拆除旧宅并交回宅基地", "放弃老宅",
    "宅基地由集体收回", "交回老宅", "退宅落户", "腾退", "自动放弃宅基地使用权", "宅基地退回集体",
    "让出祖宅", "以宅换房", "以宅基地换房",
    # income distribution, shares
    "放弃集体收益分配", "放弃集体收益分配权", "不再参与分红", "停止分红", "取消其分红资格",
    "不再享受集体收益", "退股", "交回股份", "股份收回", "放弃股权", "不予分红", "不再分配集体收益",
    # membership
    "丧失成员资格", "取消成员资格", "户口迁出后不再是集体成员", "视为自动放弃成员资格",
    "成员资格自动终止", "不再具有本社成员资格", "退出集体经济组织", "失去村民资格",
    # trades and conditions
    "以地换房", "以地换社保", "土地换户口", "承包地换户口", "退地落户", "退地换户",
    "作为落户条件须放弃宅基地", "以放弃承包地为落户前提",
    # English
    "give up the contract land", "surrender the homestead", "relinquish the income right",
    "hand back the land before settling", "waive the distribution right",
    "loses membership on moving the hukou", "no longer a member after settling",
    "land for hukou",
    # more ways officials were heard to put it
    "先把承包地交给村里再办户口", "承包地须交村集体统一收回", "承诺放弃本户承包地", "须签订退地协议",
    "土地退还给集体后方可迁户", "退还责任田", "交回口粮田", "承包经营权一并注销", "承包合同同时解除",
    "同意集体收回承包地", "自愿交回全部承包地", "放弃二轮延包", "不再参与二轮延包", "退出土地承包关系",
    "承包地由村委会收回另行发包", "无偿交回承包地", "旧宅基地交回村集体", "宅基地上交村委会",
    "放弃宅基地资格权", "宅基地资格权注销", "腾退老宅院", "退出宅基地资格", "拆除老宅并交回宅基地",
    "不再享有村集体经济分红", "分红资格取消", "股权由集体收回", "不再计发分红", "放弃集体资产股份",
    "股份退回集体", "收益分配资格取消", "取消其集体收益分配资格", "户口迁出即不再是成员",
    "迁出户口者取消社员资格", "落户城镇后取消成员身份", "进城落户后自动退出集体经济组织",
    "不再是本村集体经济组织成员", "村民资格自动丧失", "社员资格注销", "落户后不再保留集体成员身份",
    "以承包地换城镇户口", "以宅基地换城镇住房", "以土地换保障", "拿地换户口", "用宅基地换房子",
    "以退地作为落户前提", "交地才能落户", "退地方可落户", "先退地后落户", "不退地不给办户口",
    "return the homestead to the collective", "give up the income-distribution right",
    "surrender of the contract land is required", "forfeit the shares",
    "hand back the certificate and the land", "waiver of the homestead",
    "relinquishment of membership", "must give up the land",
    "no longer a member of the collective", "land-for-hukou swap",
    "落户须知：退回承包地", "附：交回宅基地承诺书", "条件一：放弃集体分红", "办理前须腾退宅基地",
    "迁户前交回土地", "签字放弃承包权", "放弃土地换取城镇户口", "退地协议书.pdf", "宅基地退出确认书.pdf",
    "放弃分红声明.docx", "集体股份放弃书.jpg",
]

NEUTRAL = [
    "保留土地承包经营权", "依法保留宅基地使用权", "继续享有集体收益分配权", "成员资格不变",
    "不得以退出承包地作为落户条件", "不得要求其放弃宅基地", "无需交回承包地", "不以放弃收益分配为条件",
    "严禁以退地作为落户条件", "落户不影响其承包经营权",
    "准予落户", "材料齐全，准予落户", "经核实符合落户条件", "申请人已在城区购房并实际居住",
    "请于三十日内到新住址派出所办理户口登记", "携带户口簿原件", "领取新户口簿",
    "不动产权证书.pdf", "购房合同.pdf", "居住证.jpg", "身份证正反面.png", "结婚证.pdf",
    "出生医学证明.pdf", "租赁登记备案证明.pdf", "单位集体户证明.pdf", "员工宿舍证明.pdf",
    "上党区长子路12号3单元502室", "潞州区英雄南路88号", "长治市高新区漳泽大道1号",
    "屯留区麟绛路6号院", "襄垣县城关镇文化路3号", "城北派出所", "长治高新区公安分局",
    "长治市某某科技有限公司", "居住证号码有误，请更正", "住所未经核实", "租赁合同未备案",
    "随迁子女已婚，需另行申请", "身份证件不全", "重复申请",
    "证书遗失，已登报声明作废", "证书损毁，申请换发", "延包后换发", "地块互换后换发",
    "登记错误，依更正登记注销", "权利已因法院判决终止", "土地被依法征收，补偿已到位",
    "承包期届满未续包", "户绝无继承人", "地块分割后换发新证",
    "因死亡成员资格终止", "已取得其他集体经济组织成员资格", "已录用为公务员",
    "丧失中华人民共和国国籍", "依章程第十二条，本人书面申请自愿退出",
    "户主本人到场签字", "补偿款已转账至户主账户", "银行流水号202611290001",
    "经入户访谈，户主表示退出系本人意愿，无人胁迫", "冷静期内可撤回",
    "本村2025年度收益分配方案已公示", "人口股与劳龄股按章程确定", "股份量化到人",
    "宅基地面积符合省定标准", "互换地块", "地块东至张三家地", "南至村道", "西至水渠", "北至林地",
    "村民小组会议记录", "承包合同编码140404101201010001J", "土地承包经营权证已颁发",
    "集体经济组织成员大会决议", "收益分配按股进行", "保留原承包地", "原宅基地继续保留",
    "进城落户农民的土地承包经营权受法律保护", "settled in town; every right is kept",
    "present the original documents", "the contract right stays with the household",
    "register at the new address within 30 days", "homestead kept as before",
    "户口迁入城区后，承包地仍由本户经营", "分红照常发放", "股份不变", "成员身份保留",
    "按时足额发放分红", "承包经营权证书补发", "宅基地使用权登记", "确权登记颁证",
    "户籍民警已核对身份证", "申请人配偶随迁", "未婚子女随迁", "父母随迁", "房屋所有权证号已核",
    "购房合同已备案", "住所为自有住房", "经现场核实实际居住", "居住证有效期至2029年", "申请材料已收齐",
    "落户地址为房屋所在地", "迁入社区集体户", "迁入单位集体户", "请按时领取户口簿", "身份证件已验原件",
    "户口簿复印件", "婚姻状况已核实", "子女出生证明已核", "社区集体户口地址", "承包地继续由本户经营",
    "宅基地及住房由本户保留", "集体收益分配照常", "股份继续享有", "成员资格不因落户改变",
    "依法保护进城落户农民的土地承包经营权", "依法保障进城落户农民的宅基地使用权", "依法保障集体收益分配权",
    "自愿有偿退出须另行申请", "是否退出完全由本人决定", "土地经营权流转合同", "流转期限五年",
    "承包地出租给合作社", "以土地经营权入股合作社", "本户承包地面积3.2亩", "宅基地面积180平方米",
    "地块编码14040410120101000001", "四至清楚", "界址点已确认", "指界人已签字", "证书编号有误已更正",
    "证书污损", "补发证书", "颁证日期", "登簿完成", "公示期满无异议", "异议已处理", "更正登记申请书",
    "权利人姓名更正", "因病去世", "已加入外国国籍", "取得城关村成员资格", "考录为公务员", "章程第八条",
    "成员大会表决通过", "成员名册已公示", "异议期七天", "报乡镇备案", "补偿款5万元已支付",
    "冷静期三十日", "户主及成年共有人均已签字同意", "访谈记录已归档", "价格较低", "互换后地块更规整",
    "退休证明", "退役军人证", "交回旧户口簿换领新簿", "收回投资款", "退还押金",
]

_s2t = opencc.OpenCC("s2t")


def _fullwidth(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else ("\u3000" if c == " " else c)
                   for c in text)


def variants(text: str) -> dict[str, str]:
    """The ways a wording was disguised against the old keyword check."""
    zw = "\u200b".join(text)
    return {
        "plain": text,
        "traditional": _s2t.convert(text),
        "spaced": " ".join(text),
        "full-width": _fullwidth(" ".join(text)),
        "zero-width": zw,
        "soft-hyphen": "\u00ad".join(text),
        "html-entities": "".join(f"&#{ord(c)};" for c in text),
        "html-entities-twice": "".join(f"&amp;#x{ord(c):x};" for c in text),
        "url-encoded": quote(text),
        "url-encoded-twice": quote(quote(text)),
        "mixed": html.escape(_s2t.convert(" ".join(text[: len(text) // 2]))) +
        "\u200c" + quote(text[len(text) // 2:]),
        "pinyin": " ".join(lazy_pinyin(text)),
        "pinyin-tones": " ".join(lazy_pinyin(text, style=Style.TONE)),
    }


def _has_han(text: str) -> bool:
    return any("\u4e00" <= c <= "\u9fff" for c in text)


def _corpus(base: list[str]) -> list[tuple[str, str, str]]:
    out = []
    for text in base:
        for name, v in variants(text).items():
            if name.startswith("pinyin") and not _has_han(text):
                continue  # English has no pinyin
            out.append((text, name, v))
    return out


HIT_CORPUS = _corpus(HITS)
NEUTRAL_CORPUS = _corpus(NEUTRAL)

# Pinyin: only entries of three characters or more, or a short one whose pinyin is unmistakable,
# are matched in Latin letters (two-character words like 交地 jiaodi hide in 较低 "lower"), and
# not proximity pairs (verb … right): a romanised wording whose hits are all of that kind is
# not expected to be caught in pinyin.  The count left out is reported.
_NO_PINYIN = {t for t in HITS if not any(guardtext.pinyin_matchable(h.word)
                                         for h in guardtext.check("settlement", t))}


def _expected_hit(text: str, variant: str) -> bool:
    return not (variant.startswith("pinyin") and text in _NO_PINYIN)


def test_the_corpus_has_150_wordings_each_way():
    assert len(HITS) >= 150 and len(NEUTRAL) >= 150
    assert len(HIT_CORPUS) >= 150 and len(NEUTRAL_CORPUS) >= 150
    assert len(set(HITS)) == len(HITS) and len(set(NEUTRAL)) == len(NEUTRAL)


def test_every_base_wording_is_caught_and_every_neutral_one_passes():
    missed = [t for t in HITS if not guardtext.check("settlement", t)]
    flagged = [(t, guardtext.check("settlement", t)) for t in NEUTRAL
               if guardtext.check("settlement", t)]
    assert missed == [] and flagged == []


def test_rates_over_the_augmented_corpus():
    expected = [(t, n, v) for t, n, v in HIT_CORPUS if _expected_hit(t, n)]
    caught = [(t, n) for t, n, v in expected if guardtext.check("settlement", v)]
    missed = [(t, n) for t, n, v in expected if not guardtext.check("settlement", v)]
    false = [(t, n, [str(h) for h in guardtext.check("settlement", v)])
             for t, n, v in NEUTRAL_CORPUS if guardtext.check("settlement", v)]
    detection = len(caught) / len(expected)
    false_positive = len(false) / len(NEUTRAL_CORPUS)
    by_variant = {}
    for _t, n, v in expected:
        ok, total = by_variant.get(n, (0, 0))
        by_variant[n] = (ok + bool(guardtext.check("settlement", v)), total + 1)
    lines = [f"hits: {len(HITS)} wordings, {len(expected)} variants (of {len(HIT_CORPUS)}; "
             f"{len(HIT_CORPUS) - len(expected)} pinyin variants of wordings without a "
             f"pinyin-matched entry not expected); detection {detection:.4f}",
             f"neutral: {len(NEUTRAL)} wordings, {len(NEUTRAL_CORPUS)} variants; "
             f"false positives {len(false)} = {false_positive:.4f}"]
    lines += [f"  {n}: {ok}/{total}" for n, (ok, total) in sorted(by_variant.items())]
    lines += [f"  missed: {m}" for m in missed] + [f"  false positive: {f}" for f in false]
    report = "\n".join(lines)
    print("\n" + report)
    Path(__file__).with_name("guardtext_rates.txt").write_text(report + "\n", encoding="utf-8")
    assert missed == [] and false == []
    assert detection == 1.0 and false_positive == 0.0


@pytest.mark.parametrize("text,word", [
    ("不得不退地", "退地"),  # "must": not a negation
    ("不得以退地为由……但必须退地", "退地"),  # a stated rule, then the demand
    ("tui di", "退地"), ("TUI DI", "退地"), ("yǐ dì huàn hù", "以地换户"),
    ("&lt;b&gt;以地&lt;/b&gt;换户", "以地换户"),
])
def test_tricks(text, word):
    hits = guardtext.check("settlement", text)
    assert any(h.word == word for h in hits), hits


def test_policies_differ_by_field():
    # a membership note naming the hukou is refused; the same words in a settlement are normal
    assert guardtext.check("membership", "户口迁出本村即不再是成员")
    assert guardtext.check("membership", "進城落戶的成員喪失成員資格")
    assert not guardtext.check("settlement", "户口迁出至城区")
    assert not guardtext.check("membership", "因死亡成员资格终止")
    assert not guardtext.check("membership", "已取得其他集体经济组织成员资格")
    # a certificate reason naming settling or a surrender is refused; a lawful end is not
    assert guardtext.check("certificate", "已进城落户，交回土地承包经营权证")
    assert guardtext.check("certificate", "农户交回承包地")
    assert not guardtext.check("certificate", "证书遗失，已登报声明作废")
    assert not guardtext.check("certificate_right_ended",
                               "voluntary withdrawal that has taken effect: W-12")
    # a withdrawal describes itself, but never as a trade for the hukou
    assert not guardtext.check("withdrawal", "户主自愿退出承包地，补偿已谈妥")
    assert guardtext.check("withdrawal", "以地换户，退出后给予落户")


def test_normalise_undoes_each_disguise():
    assert guardtext.normalise("退&#x5730;") == guardtext.normalise("%E9%80%80%E5%9C%B0") == \
        guardtext.normalise("退\u200b地") == guardtext.normalise("退 ，地") == "退地"
    assert guardtext.normalise("騰退舊宅") == "腾退旧宅"
    assert guardtext.normalise("ＴＵＩ　ＤＩ") == "tuidi"


def test_gaining_another_membership_may_name_the_hukou_but_never_settling_in_town():
    note = "因婚姻户口迁出至邻村，已取得该村集体经济组织成员资格"
    assert guardtext.check("membership", note)  # on any other ground: refused
    assert not guardtext.check("membership_other", note)
    assert guardtext.check("membership_other", "已进城落户，视同取得其他成员资格")


# The first held-out set, written after the lexicon above was settled: 21 of 30 caught (0.70)
# when written, 26 of 30 before guardtext-rev, 0 of 30 neutral flagged.  It is NO LONGER HELD
# OUT: guardtext-rev tuned against it (its four misses — 先腾房后落户, 宅基地腾出来才能迁户口,
# 成员资格随户口迁出而终止, 本人自愿放弃村集体一切权益 — were generalised into the families of
# tests/test_guardtext_families.py, not added as strings); 30 of 30 after.  It stays as a
# tuning set with its floor; HELD2 below is the held-out set now.
HELD_HITS = [
    "落户的前提是把责任田退给集体", "村里要求签字后收回口粮田", "迁户口要先交还宅基地使用证",
    "进城后宅子归村里", "户口迁走的，分红停发", "股金一律退还，不再分配", "先腾房后落户",
    "老屋拆除后土地由村集体收回", "不交地，不予迁移户口", "交回土地证再来办理", "办户口得把地交出来",
    "落户城区视同放弃承包地", "凡进城落户者其承包地由集体收回", "宅基地腾出来才能迁户口",
    "成员资格随户口迁出而终止", "户籍迁出后取消分红", "退出村集体经济组织后再落户", "用老宅换城里的房",
    "拿承包地换社保", "tui chu cheng bao di", "fang qi zhai ji di", "交  回  承  包  地",
    "放&#x5F03;&#x5B85;&#x57FA;&#x5730;", "退%E5%87%BA%E6%89%BF%E5%8C%85%E5%9C%B0", "騰退宅基地後落戶",
    "give up your land first", "surrender the land to the village", "waive all collective dividends",
    "分红权利自动放弃", "本人自愿放弃村集体一切权益",
]
HELD_NEUTRAL = [
    "请携带房产证原件到派出所办理", "承包地由本户继续耕种", "宅基地上的房屋仍归本户所有", "分红按股发放到户",
    "户口迁入城区后仍是本村成员", "集体经济组织成员身份不受影响", "落户城区的申请已受理", "住房为商品房",
    "该户已于2020年签订土地流转合同", "流转费每亩每年800元", "宅基地使用权证书已颁发",
    "收益分配方案经成员大会通过",
    "本社章程规定股份生不增死不减", "户主身份证号码已核对", "居住证由公安机关签发", "未婚子女一名随迁",
    "材料不全，请补交购房合同", "住所核实中", "申请人在单位集体户落户", "集体户地址为公司办公楼",
    "证书因水浸损毁，申请换发", "更正登记：面积由2.1亩更正为2.3亩", "法院判决书（2026）晋0404民初12号",
    "征收补偿款已足额发放", "承包期至2058年12月31日", "村民小组长签字确认", "退役后回村务农",
    "退休后回乡居住", "交回旧证，换领新证", "取消预约，改日办理",
]


def test_held_out_rates():
    caught = [t for t in HELD_HITS if guardtext.check("settlement", t)]
    flagged = [t for t in HELD_NEUTRAL if guardtext.check("settlement", t)]
    report = (f"held out: detection {len(caught)}/{len(HELD_HITS)} = "
              f"{len(caught) / len(HELD_HITS):.2f}; false positives {len(flagged)}/"
              f"{len(HELD_NEUTRAL)}; missed: {[t for t in HELD_HITS if t not in caught]}")
    print("\n" + report)
    Path(__file__).with_name("guardtext_rates_heldout.txt").write_text(report + "\n",
                                                                        encoding="utf-8")
    assert len(caught) == len(HELD_HITS) and flagged == []


# A second held-out set (guardtext-rev, 2026-11-30), written before the detector was changed
# and never tuned against: conditions, sequencing, trades, memberships and rights tied to the
# hukou, plain surrenders and disguised spellings; and what a bureau clerk or a farmer really
# writes, including innocent mentions of 落户/户口/退出/交回.  Scored with the settlement
# policy, like the first held-out set.  Measured on the detector of main (0f327b2) when written:
# 27 of 45 caught (0.60), 4 of 46 neutral flagged — "任何单位不得要求进城落户农民退出承包地" and
# "是否退出承包地由农户自愿决定，与落户无关" (the rule stated, the negation or question more than
# 8 characters before), "退出宅基地须另行申请，不影响落户" and "户主自愿退出宅基地，已领取补偿款"
# (a surrender named in plain words, which the settlement policy refuses in any settlement record
# by design, domain.md §9 rule 2: they stay in the set and count).
# Measured once on guardtext-rev's detector, after its tuning (against the first set and the
# generated families of tests/test_guardtext_families.py) was done: 40 of 45 caught (0.89),
# 3 of 46 neutral flagged ("是否退出承包地…" — a question, no negative — and the two by-design
# surrender mentions above).  Not tuned against since.  Missed: trades written without 以/用/拿
# (拿宅基地抵…, 承包地折价换…, 宅基地换楼房), "落户城镇即视为自动退出本集体", "今后不要村里的
# 地和分红".  Caveat: the same author wrote this set just before designing the families, so
# some family vocabulary (暂缓, 迁不了, 别想, 要等…再办, 农转非/户籍 as settling, 不再享受/
# 没有 as a loss) was known to echo it; it is held out from tuning, not from its author.
# The floor below is the measured rate: a change that loses a detection or flags more fails.
HELD2_MEASURED_CAUGHT = 40
HELD2_MEASURED_FLAGGED = {"是否退出承包地由农户自愿决定，与落户无关", "退出宅基地须另行申请，不影响落户",
                          "户主自愿退出宅基地，已领取补偿款"}
HELD2_HITS = [
    # conditions
    "须将宅基地交给村里后才给办理落户", "落户手续要等承包地退干净再办",
    "只有交出土地承包经营权证，才受理迁户申请", "承包地不退，户口就迁不了",
    "办理农转非前，应先放弃宅基地资格", "把口粮田让出来，才可以上城镇户口",
    "未退出集体股份的，暂缓办理落户", "城镇户口办好以前要把老宅腾空交村里",
    "入户城区以交回承包地为前提", "你家的地要是不交，落户的事就别想了",
    # sequencing
    "先交宅基地，再办户口迁移", "先把股份退了再来迁户", "第一步退地，第二步落户",
    "先签退出承诺书，后办落户手续", "先拆老房子后迁户籍",
    # trades
    "拿宅基地抵城里的安置房", "用三亩承包地置换一套县城楼房", "以股份换取城镇社保",
    "承包地折价换城镇户口指标", "宅基地换楼房，承包地换社保",
    # a membership or a right tied to the hukou
    "户口转出本村的，集体成员资格一并取消", "凡农转非人员不再享受集体分配", "迁入城镇后股权自动收回",
    "因户口迁往县城，其成员身份予以注销", "户籍转为城镇居民的，收益分配权随之消灭",
    "户口迁走就没有分红了", "已在城里落户的，不再分给宅基地", "落户城镇即视为自动退出本集体",
    "农转非后不能再参加村里分配", "进城落户人员的承包地由组里统一收回",
    # surrenders in plain words
    "自愿把全部承包地交还给组上", "本户放弃在村里的所有权利", "同意将宅基地退给村集体",
    "全家自愿放弃集体经济组织的一切待遇", "今后不要村里的地和分红",
    # disguised spellings
    "xian tui di zai luo hu", "以 地 換 戶 口", "落戶前須交還宅基地",
    "tuì chū zhái jī dì hòu cái néng luò hù", "交&#22238;承包地后落户",
    quote("退出宅基地") + "后再迁户口", "ＴＵＩ ＤＩ ＬＵＯ ＨＵ", "放\u200b弃\u200b承\u200b包\u200b地",
    "腾空房屋后方可迁出户口", "户口迁出者，宅基地由村收回",
]
HELD2_NEUTRAL = [
    "申请人持户口簿到派出所办理落户", "已交回旧户口簿，领取新户口簿", "落户后请到社区登记居住信息",
    "交回居住证后换发户口簿", "先提交材料，后审核落户", "先交材料再办落户", "退出登记系统前请保存",
    "退回补正：缺少房产证复印件", "材料退回申请人补充", "户口迁移证已交回派出所",
    "户口迁出后，承包地继续由家人耕种", "本人户口已迁入城区，宅基地及房屋仍归本户",
    "进城落户后仍按股参加分红", "成员资格不随户口迁移而改变", "承包经营权不因户口迁出而丧失",
    "不得以交回宅基地作为落户的条件", "任何单位不得要求进城落户农民退出承包地",
    "是否退出承包地由农户自愿决定，与落户无关", "退出宅基地须另行申请，不影响落户",
    "户主自愿退出宅基地，已领取补偿款", "收回押金后办理退租", "退租后迁入单位集体户",
    "交房后办理不动产登记", "新房交付后迁入户口", "拆迁安置房已交付，全家落户安置小区",
    "先买房后落户", "先租房，满半年后申请落户", "落户须提供合法稳定住所证明", "购房满一年才能落户",
    "办理居住证满六个月方可申请落户", "申请人已放弃原定预约时间", "户主放弃听证",
    "村集体收益按股分配到户", "土地流转给合作社，流转费按年支付", "地块东至进城公路",
    "户口本丢失，申请补办", "宅基地上的老房子已翻建", "老宅由儿子继续居住",
    "承包地由本户继续经营，户口迁入城区", "交回旧证换领新证", "退役士兵落户安置",
    "大学生毕业后户口迁回原籍", "离婚后户口迁回娘家村，在该村取得成员资格",
    "迁户口需要房产证、身份证和户口簿", "外嫁女户口未迁出，继续享有分红", "落户后随迁子女可就近入学",
]


def test_second_held_out_rates():
    caught = [t for t in HELD2_HITS if guardtext.check("settlement", t)]
    flagged = [t for t in HELD2_NEUTRAL if guardtext.check("settlement", t)]
    report = (f"held out (2nd): detection {len(caught)}/{len(HELD2_HITS)} = "
              f"{len(caught) / len(HELD2_HITS):.2f}; false positives {len(flagged)}/"
              f"{len(HELD2_NEUTRAL)}; missed: {[t for t in HELD2_HITS if t not in caught]}; "
              f"flagged: {flagged}")
    print("\n" + report)
    Path(__file__).with_name("guardtext_rates_heldout2.txt").write_text(report + "\n",
                                                                         encoding="utf-8")
    assert len(HELD2_HITS) >= 40 and len(HELD2_NEUTRAL) >= 40
    assert len(set(HELD2_HITS)) == len(HELD2_HITS) and len(set(HELD2_NEUTRAL)) == len(HELD2_NEUTRAL)
    assert len(caught) >= HELD2_MEASURED_CAUGHT
    assert set(flagged) <= HELD2_MEASURED_FLAGGED
