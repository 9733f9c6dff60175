"""The rights guard's text detector: does a piece of free text give up a right, make something a
condition of settling, or tie a membership or right to the hukou?

Free text in a settlement, membership, certificate, withdrawal or market record must not carry
what the closed lists refuse (农村土地承包法 art 27; 乡村振兴促进法 art 55; 农村集体经济组织法
art 17).  Before matching, the text is normalised so that spelling cannot hide a wording:

- HTML entities and URL-encoding decoded, repeatedly (``&amp;#36864;`` → ``&#36864;`` → 退);
- Unicode NFKC (full-width ``ｔｕｉ`` and compatibility forms), format and zero-width
  characters removed;
- traditional → simplified Chinese (OpenCC ``t2s``);
- lower case; spaces, punctuation and symbols removed;
- and every Chinese entry is also matched in pinyin (pypinyin), tone marks removed, at syllable
  boundaries, so that "yi di huan hu" or "Yǐ dì huàn hù" is 以地换户.

The lexicon is data (``guardtext_lexicon.toml``): four groups (surrender, condition,
settlement, urban) and the neutral words that, right before a match, make it a statement of the rule
("不得以退出承包地为条件").  Each caller names a policy: which groups its fields refuse.

This module imports nothing from the features: they call it."""
from __future__ import annotations

import html
import re
import tomllib
import unicodedata
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from functools import lru_cache, partial
from pathlib import Path
from urllib.parse import unquote

LEXICON = Path(__file__).with_name("guardtext_lexicon.toml")
GROUPS = ("surrender", "condition", "settlement", "urban")

# Which groups a field refuses.
POLICIES = {
    # a settlement case may not mention giving up a right at all (domain.md §9 rule 2)
    "settlement": ("surrender", "condition"),
    # a membership ends on an art 17 ground: never on the hukou, settling or residence
    "membership": ("condition", "settlement", "urban"),
    # … except that gaining another collective's membership (checked by the operation) often
    # comes with moving the hukou there: only settling in town and trades are refused
    "membership_other": ("condition", "urban"),
    # a certificate is cancelled, reissued or replaced for what happened to the right or the
    # paper — never for settling, nor for a surrender written into the reason
    "certificate": ("surrender", "condition", "settlement", "urban"),
    # a certificate cancelled by the system after its right ended on a lawful ground: the ground
    # names the withdrawal or expiry, but never the hukou
    "certificate_right_ended": ("condition", "settlement", "urban"),
    # a right ends on a lawful ground (expiry, expropriation, a judgment, a mutation, the holder
    # extinct): its reason and evidence never name settling, the hukou or a condition
    "right_end": ("condition", "settlement", "urban"),
    # a withdrawal is the holder's own act: never traded against the hukou
    "withdrawal": ("condition",),
    # market listings and bids: no land-for-hukou deals, no surrender dressed as a term
    "market": ("condition",),
    # the reasons of the register's own changes (parcel amendments, splits and merges, import
    # corrections and acceptances, objections to a campaign, extensions): never a condition, and
    # never settling given as the cause of the change — a register change is never a right lost
    # in disguise.  A settling word that only names a road, a place, a distance or working away
    # ("东至进城道路", "地块离村较远", "户主长期在外务工") passes when the reason names no
    # right-affecting change (see `_descriptive`, the lexicon's [register])
    "register": ("condition", "settlement", "urban"),
    # remarks and 四至 of a parcel or a delivery (DKBZXX, BZ, BZXX; 东至/西至/南至/北至): they
    # describe the land and often name roads and places (进城路, 城关, 离村), so a mere mention of
    # town or settling passes; trades (以地换户) and the surrender of a right are refused
    # (domain.md: settling never requires giving up 承包经营权/宅基地使用权/收益分配权;
    # 农村土地承包法 art 27; 乡村振兴促进法 art 55)
    "register_remark": ("surrender", "condition"),
}

_SEPARATORS = re.compile(r"[\W_]+", re.UNICODE)
_HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_FORMAT = {"Cf", "Cc", "Cs", "Co", "Cn", "Mn", "Me"}  # zero-width, controls, combining marks
_TAGS = re.compile(r"<[^<>]{0,200}>")
_ENTITY_LIKE = re.compile(r"&(#\d+|#x[0-9a-f]+|[a-z]+);?|%[0-9a-f]{2}", re.IGNORECASE)


@dataclass(frozen=True)
class Hit:
    group: str
    word: str  # the lexicon entry
    form: str  # "text" or "pinyin"

    def __str__(self) -> str:
        return self.word


@lru_cache(maxsize=1)
def _t2s():
    import opencc

    return opencc.OpenCC("t2s")


def decode(text: str) -> str:
    """HTML entities and URL-encoding, undone until nothing changes (at most 8 rounds); then
    every base64 or hex run that decodes to Chinese is added after the text."""
    for _ in range(8):
        if not _ENTITY_LIKE.search(text):
            break
        new = html.unescape(unquote(text, errors="replace"))
        if new == text:
            break
        text = new
    return text + "".join(" " + d for d in _encoded(text))


_BASE64 = re.compile(r"[A-Za-z0-9+/_-]{8,}={0,2}")
_HEX = re.compile(r"(?:[0-9a-fA-F]{2}){3,}")


def _encoded(text: str) -> list[str]:
    """Runs of base64 or hex that decode (UTF-8) to text with Chinese characters in it."""
    import base64
    import binascii

    out = []
    for m in _HEX.finditer(text):
        try:
            d = binascii.unhexlify(m.group(0)).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            continue
        if _HAN.search(d):
            out.append(d)
    for m in _BASE64.finditer(text):
        run = m.group(0).rstrip("=")
        try:
            d = base64.b64decode(run.replace("-", "+").replace("_", "/")
                                 + "=" * (-len(run) % 4), validate=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            continue
        if _HAN.search(d):
            out.append(d)
    return out


@lru_cache(maxsize=1)
def _data() -> dict:
    return tomllib.loads(LEXICON.read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def _confusables() -> dict:
    return str.maketrans(_data().get("confusables", {}).get("map", {}))


def _strip_marks(text: str) -> str:
    """Tone marks off (ǐ → i) and zero-width or format characters out, after NFKC."""
    out = []
    for ch in unicodedata.normalize("NFKD", text):
        if unicodedata.category(ch) in _FORMAT:
            continue
        out.append(ch)
    return unicodedata.normalize("NFKC", "".join(out))


def _readable(text: str) -> str:
    """Decoded, NFKC, marks and zero-width characters out, simplified, lower case."""
    text = _TAGS.sub("", decode(str(text or "")))
    text = unicodedata.normalize("NFKC", text).translate(_confusables())
    text = _strip_marks(text)
    return _t2s().convert(text).lower()


def normalise(text: str) -> str:
    """Decoded, NFKC, marks and zero-width characters out, simplified, lower case, and only
    letters and digits kept."""
    return _SEPARATORS.sub("", _readable(text))


# what ends a clause (after NFKC: full-width ，；！？： are their ASCII forms)
_CLAUSE_END = re.compile(r"[,.;!?:。；，！？：…\n\r]+")


def _normalise_clauses(text: str) -> tuple[str, list[int]]:
    """The normalised text, and the positions in it where a clause starts (0 first): a
    negation like 不得将 scopes its own clause and no further."""
    starts, parts, pos = [0], [], 0
    for piece in _CLAUSE_END.split(_readable(text)):
        piece = _SEPARATORS.sub("", piece)
        if piece and pos:
            starts.append(pos)
        parts.append(piece)
        pos += len(piece)
    return "".join(parts), starts


_RUNS = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+|[^\u3400-\u9fff\uf900-\ufaff]+")


def _syllables(compact: str) -> tuple[str, set[int]]:
    """The text in pinyin without tones (read in context: 退还 tuihuan, 还是 haishi), and the
    positions where a syllable starts or ends (every position inside a romanised run, which is
    not segmented)."""
    py, bounds, _ = _syllables_at(compact)
    return py, bounds


def _syllables_at(compact: str) -> tuple[str, set[int], list[int]]:
    """`_syllables`, and where in the pinyin each character of `compact` starts."""
    from pypinyin import Style, lazy_pinyin

    parts: list[str] = []
    bounds = {0}
    at: list[int] = []
    pos = 0
    for run in _RUNS.findall(compact):
        if _HAN.match(run):
            syls = lazy_pinyin(run, style=Style.NORMAL, v_to_u=False)
            if len(syls) != len(run):  # a character without a reading: the run starts there
                at.extend([pos] * len(run))
            for syl in syls:
                if len(syls) == len(run):
                    at.append(pos)
                parts.append(syl)
                pos += len(syl)
                bounds.add(pos)
        else:
            for ch in run:
                at.append(pos)
                parts.append(ch)
                pos += 1
                bounds.update((pos - 1, pos))
    return "".join(parts), bounds, at


@lru_cache(maxsize=1)
def lexicon() -> dict:
    data = _data()
    groups = {}
    for g in GROUPS:
        entries = []
        for w in data[g]["words"]:
            n = normalise(w)
            han = _HAN.findall(n)
            # pinyin for entries of three characters or more, and the short ones whose pinyin
            # is unmistakable; two-character words like 还地 (huandi) hide inside 互换地块
            py = ()
            if han and pinyin_matchable(w):
                py = tuple({_syllables(n)[0], "".join(_syllables(c)[0] for c in n)})
            entries.append((w, n, py))
        groups[g] = entries
    neutral = sorted({normalise(w) for w in data["neutral"]["words"]}, key=len, reverse=True)
    neutral_py = sorted({_syllables(n)[0] for n in neutral if _HAN.match(n)}, key=len,
                        reverse=True)
    s = data["surrender"]
    pairs = ([normalise(v) for v in s.get("verbs", [])], [normalise(o) for o in
                                                          s.get("objects", [])],
             int(s.get("window", 8)))
    after = ([normalise(v) for v in s.get("after", [])], int(s.get("after_window", 8)))
    after_py = ([(o, _syllables(o)[0]) for o in pairs[1]],
                [(v, _syllables(v)[0]) for v in after[0]], 6 * after[1])
    exempt = sorted({normalise(w) for w in data.get("exempt", {}).get("words", [])}, key=len)
    patterns = _trade_patterns(data["condition"]) + _tie_patterns(data["condition"], exempt)
    pairs_py = ([(v, _syllables(v)[0]) for v in pairs[0]],
                [(o, _syllables(o)[0]) for o in pairs[1]])
    c = data["condition"]
    settle = {normalise(w) for w in c.get("tie_settle", [])}
    causes = {normalise(w) for w in c.get("tie_cause", []) + data["settlement"]["words"] +
              data["urban"]["words"] if _HAN.search(w)}
    return {"groups": groups, "neutral": neutral, "neutral_py": neutral_py, "pairs": pairs,
            "pairs_py": pairs_py, "after": after, "after_py": after_py, "patterns": patterns,
            "exempt": exempt,
            "tie_objects": sorted({normalise(w) for w in c.get("tie_object", [])} |
                                  {normalise(w) for w in s.get("objects", []) if _HAN.search(w)}
                                  | {"宅", "屋"}),
            "trade_py": tuple([_syllables(normalise(w))[0] for w in c.get(k, [])]
                              for k in ("trade_by", "trade_what", "trade_for")) +
            (int(c.get("trade_gap_before", 0)), int(c.get("trade_gap_after", 0))),
            "hukou_ties": _hukou_patterns(c, sorted(causes)),
            "whole": _whole_patterns(s),
            # a tie needs a settling word, a hukou tie a cause: a cheap look first
            "settle": (sorted(settle), sorted({_syllables(w)[0] for w in settle})),
            "causes": (sorted(causes), sorted({_syllables(w)[0] for w in causes})),
            "clause_words": sorted({normalise(w) for w in data["neutral"].get("clause_words", [])}),
            "clause_window": int(data["neutral"].get("clause_window", 24)),
            "frame": sorted({normalise(w) for w in data["neutral"].get("clause_frame", [])}),
            "frame_py": sorted({_syllables(normalise(w))[0]
                                for w in data["neutral"].get("clause_frame", [])}),
            "clause_words_py": sorted({_syllables(normalise(w))[0]
                                       for w in data["neutral"].get("clause_words", [])}),
            "lose_block": sorted({normalise(w) for w in c.get("tie_lose_block", [])})}


def _alt(words, py: bool = False) -> str:
    forms = {_syllables(normalise(w))[0] if py else normalise(w) for w in words}
    return "|".join(sorted(forms, key=len, reverse=True))


def _trade_patterns(c: dict) -> tuple:
    """以/用/拿 + a right + (up to three characters) + 换 + what is got, in characters and in
    pinyin."""
    if not c.get("trade_by"):
        return ()
    by, what, to = c["trade_by"], c["trade_what"], c["trade_for"]
    gb, ga = int(c.get("trade_gap_before", 0)), int(c.get("trade_gap_after", 0))
    text_pat = re.compile(f"(?:{_alt(by)})[^换]{{0,{gb}}}?(?:{_alt(what)})[^换]{{0,3}}换(?:取)?"
                          f"[^换]{{0,{ga}}}?(?:{_alt(to)})")
    py_pat = re.compile(f"(?:{_alt(by, True)})[a-z]{{0,{6 * gb}}}?(?:{_alt(what, True)})"
                        f"[a-z]{{0,18}}?huan(?:qu)?[a-z]{{0,{6 * ga}}}?(?:{_alt(to, True)})")
    return text_pat, py_pat


def _objects(words, exempt: list[str], py: bool) -> str:
    """The objects of a giving-up; a one-character one (地, 田) not where it begins an exempt
    compound (地址, 田租)."""
    out = []
    for w in sorted({normalise(x) for x in words}, key=len, reverse=True):
        if py:
            out.append(_syllables(w)[0])
            continue
        nexts = sorted({e[len(w)] for e in exempt if len(w) == 1 and e.startswith(w)
                        and len(e) > len(w)})
        out.append(w + (f"(?![{''.join(nexts)}])" if nexts else ""))
    return "|".join(out)


def _give(c: dict, exempt: list[str], py: bool) -> str:
    """A giving-up, however it is written ([condition] tie_give and tie_bare_*, tie_verb,
    tie_result, tie_object): a word of its own (退出, 腾出来, 腾房), an object then a verb with
    its complement (宅基地腾出来, 把地交出来), a verb then an object (交宅基地, 拆老房子)."""
    a = partial(_alt, py=py)
    verbs = [normalise(v) for v in c.get("tie_verb", [])]
    stems, full = [v for v in verbs if len(v) == 1], [v for v in verbs if len(v) > 1]
    obj = _objects(c.get("tie_object", []), exempt, py)
    # between an object and its verb: not a negative (the conditional) nor a paper (宅基地证明
    # 交回 hands in a paper); between a verb and its object: a quantity (交出三亩地) or, after a
    # verb of two characters (or after 把/将), up to four characters (交回本户全部承包地)
    gap = "[a-z]{0,12}?" if py else "[^不没未证明书件本簿表材]{0,2}?"
    wide = "[a-z]{0,24}?" if py else "[^不没未]{0,4}?"
    qty = "(?:[a-z]{1,6}mu)?" if py else "(?:[0-9.一二两三四五六七八九十半几]{1,3}[亩块处间])?"
    le = "le" if py else "了"
    result = f"(?:{a(c.get('tie_result', []))})"
    return (f"(?:{a(c['tie_give'] + c.get('tie_give_flat', []))}"
            f"|(?:{a(c.get('tie_bare_verb', []))})(?:{a(c.get('tie_bare_result', []))})"
            f"|(?:(?:{a(['把', '将'])}){wide})?{qty}(?:{obj}){gap}(?:{a(full)}|(?:{a(stems)}){result})"
            f"|(?:{a(full)}){result}?(?:{le})?{wide}(?:{obj})"
            f"|(?:{a(stems)}){result}?(?:{le})?{qty}(?:{obj}))")


def _tie_patterns(c: dict, exempt: list[str]) -> tuple:
    """A giving-up tied to settling within a few characters: give … as … settle … condition;
    settle … first … give; give … then … settle; settle … condition is … give; first give …
    then settle; settle … wait for … give … then; the conditional with two negatives (若不将
    承包地交回，不得落户; 承包地不退，户口就迁不了) (guardtext_lexicon.toml, [condition]
    tie_*), each in characters and in pinyin."""
    if not c.get("tie_give"):
        return ()
    g = int(c.get("tie_gap", 8))

    def forms(py: bool, unit: int):
        a = partial(_alt, py=py)
        give, settle = _give(c, exempt, py), a(c["tie_settle"])
        gap, few, two = f".{{0,{g * unit}}}?", f".{{0,{3 * unit}}}?", f".{{0,{2 * unit}}}?"
        six, four = f".{{0,{6 * unit}}}?", f".{{0,{4 * unit}}}?"
        obj = _objects(c.get("tie_object", []), exempt, py)
        verbs = a(c.get("tie_verb", []))
        not_ = f"(?:{a(c.get('tie_if', []))})?(?:{a(c.get('tie_not', []))})"
        head = (f"(?:{not_}(?!{a(c.get('tie_not_after', []))})(?:{a(['把', '将'])})?"
                f"{few}(?:{give})|(?:{obj}){few}(?:{a(c.get('tie_not', []))})(?:{verbs}))")
        return (f"(?:{give}){gap}(?:{a(c['tie_as'])}){gap}(?:{settle}){few}(?:{a(c['tie_cond'])})",
                f"(?:{settle}){gap}(?:{a(c['tie_first'])})(?:{give})",
                f"(?:{give}){gap}(?:{a(c['tie_then'])}){few}(?:{settle})",
                f"(?:{settle}){two}(?:{a(c['tie_cond'])})(?:{a(c['tie_is'])}){few}(?:{give})",
                f"(?:{a(c['tie_seq_first'])}){six}(?:{give}){gap}(?:{a(c['tie_seq_then'])})"
                f"{few}(?:{settle})",
                f"(?:{settle}){six}(?:{a(c['tie_wait'])}){few}(?:{give}){six}"
                f"(?:{a(c['tie_wait_then'])})",
                f"{head}{gap}(?:{a(c['tie_refuse'])})(?!{a(c.get('tie_refuse_not', ['x']))})"
                f"{few}(?:{settle})",
                f"{head}{gap}(?:{settle}){four}(?:{a(c['tie_refuse_after'])})",
                f"(?:{give}){few}(?:{a(c.get('tie_after', ['x']))}){six}"
                f"(?:{a(c.get('tie_settle_strong', ['x']))})")

    # in pinyin a character is up to six letters
    return tuple((re.compile(t), re.compile(p)) for t, p in zip(forms(False, 1), forms(True, 6),
                                                                 strict=True))


def _hukou_patterns(c: dict, causes: list[str]) -> tuple:
    """A membership or a right that ends with the hukou (成员资格随户口迁出而终止; 因进城落户
    丧失承包经营权; 户口迁走就没有分红了): right … with … cause … loss; (with) cause … right …
    loss; (with) cause … loss … right.  The groups `w` (the connective) and `l` (the loss) are
    checked for a negative right before them ("不因户口迁出而丧失")."""
    if not c.get("tie_right"):
        return ()

    def forms(py: bool, unit: int):
        a = partial(_alt, py=py)
        right, with_, lose = a(c["tie_right"]), a(c["tie_with"]), a(c["tie_lose"])
        cause = "|".join(sorted({_syllables(w)[0] if py else w for w in causes}, key=len,
                                reverse=True))
        few, six, gap = f".{{0,{4 * unit}}}?", f".{{0,{6 * unit}}}?", f".{{0,{8 * unit}}}?"
        return (f"(?:{right}){few}(?P<w>{with_}).{{0,{3 * unit}}}?(?:{cause}){six}(?P<l>{lose})",
                f"(?:{with_})?(?:{cause}){gap}(?:{right}){few}(?P<l>{lose})",
                f"(?:{with_})?(?:{cause}){gap}(?P<l>{lose}){few}(?:{right})")

    return tuple((re.compile(t), re.compile(p)) for t, p in zip(forms(False, 1), forms(True, 6),
                                                                 strict=True))


def _whole_patterns(s: dict) -> tuple:
    """Giving up everything the collective gives ([surrender] whole_*): 放弃村集体一切权益."""
    if not s.get("whole_verbs"):
        return ()
    g = int(s.get("whole_gap", 8))
    out = []
    for py, unit in ((False, 1), (True, 6)):
        a = partial(_alt, py=py)
        gap = f".{{0,{g * unit}}}?"
        out.append(re.compile(f"(?:{a(s['whole_verbs'])}){gap}(?:{a(s['whole_of'])}){gap}"
                              f"(?:{a(s['whole_what'])})"))
    return tuple(out)


def pinyin_matchable(word: str) -> bool:
    """Whether a lexicon entry is also matched in pinyin (three characters or more, or a
    short one whose pinyin is unmistakable)."""
    n = normalise(word)
    return bool(n) and len(_HAN.findall(n)) == len(n) and (len(n) >= 3 or word in _SHORT_PINYIN)


_SHORT_PINYIN = {"退地", "退宅", "腾退", "落户"}
_NEUTRAL_WINDOW = 8
_MUST = ("不得不", "必须", "务必", "须先", "应先")
_MUST_PY = ("budebu", "bixu", "wubi", "xuxian", "yingxian")


def _exempt(compact: str, start: int, length: int, exempt: list[str]) -> bool:
    """Whether a short match straddles or sits inside an exempt compound (接收地址: 收地)."""
    end = start + length
    for e in exempt:
        k = compact.find(e, max(0, start - len(e) + 1))
        while k != -1 and k < end:
            if k + len(e) > start and (k < start or k + len(e) > end):
                return True
            k = compact.find(e, k + 1)
    return False


def _negated(compact: str, start: int, neutral: list[str],
             clauses: list[int] | None = None) -> bool:
    """Whether a match at `start` states the rule: a neutral word in the 8 characters before
    it, or a clause-taking negative (不得将…, 严禁以…) earlier in the same clause — unless a
    "must" (不得不, 必须 …) stands in between."""
    before = compact[max(0, start - _NEUTRAL_WINDOW):start]
    if any(m in before for m in _MUST):
        return False
    if any(n in before for n in neutral):
        return True
    if clauses is None:
        return False
    lex = lexicon()
    k = bisect_right(clauses, start)
    first = max(clauses[k - 1], start - lex["clause_window"])
    clause = compact[max(0, first):start]
    if not clause or any(m in clause for m in _MUST):
        return False
    rest = compact[start:clauses[k] if k < len(clauses) else len(compact)]
    return any(n in clause and (not n.endswith(_FRAMED) or any(f in rest for f in lex["frame"]))
               for n in lex["clause_words"])


def _negated_py(py: str, start: int, neutral_py: list[str],
                clauses: list[int] | None = None) -> bool:
    """`_negated` in pinyin (a character is up to six letters)."""
    before = py[max(0, start - 6 * _NEUTRAL_WINDOW):start]
    if any(m in before for m in _MUST_PY):
        return False
    if any(n in before for n in neutral_py):
        return True
    if not clauses:
        return False
    lex = lexicon()
    k = bisect_right(clauses, start)
    first = max(clauses[k - 1], start - 6 * lex["clause_window"])
    clause = py[max(0, first):start]
    if not clause or any(m in clause for m in _MUST_PY):
        return False
    rest = py[start:clauses[k] if k < len(clauses) else len(py)]
    return any(n in clause and (not n.endswith(_FRAMED_PY) or any(f in rest
                                                                    for f in lex["frame_py"]))
               for n in lex["clause_words_py"])


# a clause negative ending in 将/把/以 (不得将…) states the rule only when the clause goes on to
# frame what follows as a condition (…作为落户的前提; …为由): "严禁把补偿款挪作他用先退地后落户"
# is no statement of the rule
_FRAMED = ("将", "把", "以")
_FRAMED_PY = ("jiang", "ba", "yi")


def _find(haystack: str, needle: str, bounds: set[int] | None):
    i = haystack.find(needle)
    while i != -1:
        if bounds is None or (i in bounds and i + len(needle) in bounds):
            yield i
        i = haystack.find(needle, i + 1)


def detect(text, groups: tuple[str, ...] = GROUPS) -> list[Hit]:
    """Every lexicon entry of these groups that the text says (after normalising), except the
    ones stated as the rule ("不得以…为条件")."""
    if not text:
        return []
    lex = lexicon()
    compact, clauses = _normalise_clauses(text)
    if not compact:
        return []
    py, bounds, at = _syllables_at(compact)
    cpy = [at[c] for c in clauses if c < len(at)]  # the clauses in pinyin
    hits: list[Hit] = []
    for g in groups:
        for word, n, p in lex["groups"][g]:
            found = list(_find(compact, n, None)) if n else []
            if len(n) <= 2:  # a short word inside a compound that says something else
                found = [i for i in found if not _exempt(compact, i, len(n), lex["exempt"])]
            if any(not _negated(compact, i, lex["neutral"], clauses) for i in found):
                hits.append(Hit(g, word, "text"))
            elif any(len([i for i in _find(py, x, bounds)
                          if not _negated_py(py, i, lex["neutral_py"], cpy)]) > len(found)
                     for x in p):
                # more matches in pinyin than in characters: a romanised (or homophone) wording
                # that no neutral word covers
                hits.append(Hit(g, word, "pinyin"))
    if "surrender" in groups and not any(h.group == "surrender" for h in hits):
        paper: list = []  # pairs read as a reissue's paper: not read again in pinyin
        hit = _pair(compact, py, bounds, lex, clauses, cpy) or \
            _after(compact, lex, clauses, paper) or \
            (None if paper and not re.search(r"[a-z]", compact)
             else _after_py(py, bounds, lex, cpy, (compact, at), clauses)) or \
            _whole(compact, py, bounds, lex, clauses, cpy)
        if hit is not None:
            hits.append(hit)
    if "condition" in groups and lex["patterns"]:
        text_pat, py_pat, *ties = lex["patterns"]
        m = text_pat.search(compact)
        if m and not _negated(compact, m.start(), lex["neutral"], clauses):
            hits.append(Hit("condition", m.group(0), "text"))
        elif not m:
            m = py_pat.search(py) and _trade_py(compact, py, bounds, at, lex)
            if m and not _negated_py(py, m[0], lex["neutral_py"], cpy):
                hits.append(Hit("condition", py[m[0]:m[1]], "pinyin"))
        if not any(h.group == "condition" for h in hits):
            hit = _tie(compact, clauses, py, bounds, lex, ties, cpy)
            if hit is not None:
                hits.append(hit)
    return hits


def _trade_py(compact: str, py: str, bounds: set[int], at: list[int],
              lex: dict) -> tuple[int, int] | None:
    """The trade (以/用/拿 + a right + 换 + what is got) in pinyin, each part whole syllables, and
    its 换 written as 换 or in letters: 乙方将土地交还甲方 (yifang … tudi jiaohuan jiafang) and
    乙方交回土地时，双方 (… shuangfang) are a lease's return clause, not a trade."""
    by, what, to, gb, ga = lex["trade_py"]
    marks = sorted(bounds)

    def starts(lo: int, hi: int, forms):
        for i in marks[bisect_left(marks, lo):bisect_right(marks, hi)]:
            for f in forms:
                if py.startswith(f, i) and i + len(f) in bounds:
                    yield i, i + len(f)

    def letters_or_huan(i: int) -> bool:
        k = bisect_right(at, i) - 1
        return not (0 <= k < len(compact)) or compact[k] == "换" or not _HAN.match(compact[k])

    for s, e1 in starts(0, len(py), by):
        for _, e2 in starts(e1, e1 + 6 * gb, what):
            for h, e3 in starts(e2, e2 + 18, ["huanqu", "huan"]):
                if not letters_or_huan(h):
                    continue
                for _, e4 in starts(e3, e3 + 6 * ga, to):
                    return s, e4
    return None


def _present(compact: str, py: str, words: tuple[list[str], list[str]]) -> tuple[bool, bool]:
    """Whether any of the words is in the text, and in its pinyin."""
    return any(w in compact for w in words[0]), any(w in py for w in words[1])


def _tie(compact: str, clauses: list[int], py: str, bounds: set[int], lex: dict,
         ties: list, cpy: list[int]) -> Hit | None:
    """The first giving-up tied to settling, or right ended with the hukou, that is not the
    rule stated."""
    in_text, in_py = _present(compact, py, lex["settle"])
    if in_text or in_py:
        for pat, pat_py in ties:
            housing = False
            if in_text:
                for m in pat.finditer(compact):
                    if not _negated(compact, m.start(), lex["neutral"], clauses):
                        if _housing(compact, clauses, m, lex):
                            housing = True
                            continue
                        return Hit("condition", m.group(0), "text")
            if (housing or _only_housing(compact, lex)) and not re.search(r"[a-z]", compact):
                continue  # the same characters in pinyin: the housing, already judged
            if in_py:
                for m in pat_py.finditer(py):
                    if m.start() in bounds and not _negated_py(py, m.start(), lex["neutral_py"], cpy):
                        return Hit("condition", m.group(0), "pinyin")
    in_text, in_py = _present(compact, py, lex["causes"])
    if not (in_text or in_py):
        return None
    for pat, pat_py in lex["hukou_ties"]:
        if in_text:
            for m in pat.finditer(compact):
                if _hukou_tie(compact, m, 1, lex) and \
                        not _negated(compact, m.start(), lex["neutral"], clauses):
                    return Hit("condition", m.group(0), "text")
        if in_py:
            for m in pat_py.finditer(py):
                if m.start() in bounds and _hukou_tie(py, m, 6, lex) and \
                        not _negated_py(py, m.start(), lex["neutral_py"], cpy):
                    return Hit("condition", m.group(0), "pinyin")
    return None


# What a settling household vacates or leaves in town is no right: a rented or public-rental
# flat (公租房 tenants vacate it when they buy), the employer's or community's collective
# household of item 1 (先退出原单位集体户再落户).  A giving-up tied to settling is not a
# condition when its clause names one of these and no right's object (宅基地, 承包地, 地, 田 …)
_HOUSING = ("公租房", "廉租房", "租住", "租赁", "租的", "租来", "出租屋", "周转房", "宿舍",
            "单位集体户", "社区集体户")


# … and the collective's own membership, shares and income are never housing: 先退出单位集体户和
# 村集体经济组织再落户 gives up the membership (农村集体经济组织法 art 17) beside the flat
_COLLECTIVE = ("村集体", "集体经济", "经济组织", "经济合作社", "股份经济", "村民小组", "成员",
               "社员", "股", "分红", "收益", "权益", "分配")


def _housing(compact: str, clauses: list[int], m: re.Match, lex: dict) -> bool:
    start = clauses[bisect_right(clauses, m.start()) - 1] if clauses else 0
    return _only_housing(compact[start:m.end()], lex)


def _only_housing(seg: str, lex: dict) -> bool:
    """The text names housing, and no right's object nor the collective's membership."""
    return any(w in seg for w in _HOUSING) and \
        not any(o in seg for o in lex["tie_objects"]) and not any(c in seg for c in _COLLECTIVE)


_NOT = ("不", "未", "无", "没", "勿", "并非", "绝非")
_NOT_PY = ("bu", "wei", "wu", "mei", "bingfei", "juefei")


def _hukou_tie(s: str, m: re.Match, unit: int, lex: dict) -> bool:
    """A right ended with the hukou, not "不因户口迁出而丧失" (a negative right before the
    connective or the loss) nor a lawful ground beside it (取得其他成员资格, 死亡)."""
    nots = _NOT if unit == 1 else _NOT_PY
    for name in ("w", "l"):
        if name in m.re.groupindex and m.start(name) >= 0:
            before = s[max(0, m.start(name) - 2 * unit):m.start(name)]
            if any(before.endswith(n) for n in nots):
                return False
    span = m.group(0)
    if unit == 1:
        return not any(b in span for b in lex["lose_block"])
    return not any(_syllables(b)[0] in span for b in lex["lose_block"])


def _whole(compact: str, py: str, bounds: set[int], lex: dict, clauses,
           cpy: list[int]) -> Hit | None:
    """Everything the collective gives, given up as a whole (放弃村集体一切权益)."""
    if not lex["whole"]:
        return None
    pat, pat_py = lex["whole"]
    for m in pat.finditer(compact):
        if not _negated(compact, m.start(), lex["neutral"], clauses):
            return Hit("surrender", m.group(0), "text")
    for m in pat_py.finditer(py):
        if m.start() in bounds and not _negated_py(py, m.start(), lex["neutral_py"], cpy):
            return Hit("surrender", m.group(0), "pinyin")
    return None


def _after_py(py: str, bounds: set[int], lex: dict, cpy: list[int],
              han: tuple[str, list[int]] | None = None, clauses=()) -> Hit | None:
    """The same in pinyin (cheng bao jing ying quan yi bing zhu xiao); `han` (the characters
    and where each starts in the pinyin): a pair read from characters that hands back a
    reissue's paper (`_paper`) is not a surrender."""
    objects, verbs, window = lex["after_py"]
    for o, op in objects:
        for i in _find(py, op, bounds):
            end = i + len(op)
            tail = py[end:end + window]
            for v, vp in verbs:
                j = tail.find(vp)
                if j == -1 or (end + j) not in bounds or (end + j + len(vp)) not in bounds:
                    continue
                if any(n in tail[:j] for n in lex["neutral_py"]) or \
                        _negated_py(py, i, lex["neutral_py"], cpy):
                    continue
                if han is not None:
                    compact, at = han
                    a, b = bisect_right(at, end) - 1, bisect_right(at, end + j) - 1
                    if 0 <= a <= b <= len(compact) and at[a] == end and at[b] == end + j and \
                            not re.search(r"[a-z]", compact[bisect_right(at, i) - 1:b + len(v)]) \
                            and _paper(compact, compact[a:b], a,
                                       b + len(v) if compact.startswith(v, b) else None,
                                       clauses):
                        continue
                return Hit("surrender", f"{o}…{v}", "pinyin")
    return None


def _after(compact: str, lex: dict, clauses=None, paper: list | None = None) -> Hit | None:
    """A right followed closely by what is done to it (承包经营权一并注销); a neutral word in
    between or just before makes it the rule ("承包经营权不因落户而丧失")."""
    objects = lex["pairs"][1]
    verbs, window = lex["after"]
    for o in objects:
        for i in _find(compact, o, None):
            end = i + len(o)
            tail = compact[end:end + window]
            for v in verbs:
                j = tail.find(v)
                if j == -1:
                    continue
                between = tail[:j]
                if any(n in between for n in lex["neutral"]) or \
                        _negated(compact, i, lex["neutral"], clauses):
                    continue
                if _paper(compact, between, end, end + j + len(v), clauses):
                    if paper is not None:
                        paper.append((o, v))
                    continue
                return Hit("surrender", f"{o}…{v}", "text")
    return None


# A certificate replaced (换发, 补发 …): the old paper is handed back ("交回旧证，换发宅基地使用权
# 证", "承包经营权证换发，旧证交回"), the right stays.  A verb and a right read as a pair, with
# the certificate (证) between them or the right named as a certificate's title, is the paper —
# unless a conjunction joins the two (宅基地及证书交回: both)
_REISSUE = ("换发", "换证", "换领", "补发", "新证", "换新", "重新颁发", "重新发证", "重发")
_CERT_TITLE = re.compile(r"(?:使用权|经营权|承包经营权|承包权)?证")
_JOINED = ("和", "及", "与", "连同", "一并", "同", "并")


_OLD_PAPER = ("旧证", "原证", "老证")


def _paper(compact: str, between: str, obj_end: int, verb_end: int | None = None,
           clauses=()) -> bool:
    """Whether a verb-and-right pair hands back the certificate of a reissue, not the right:
    the certificate between them, the right named as a certificate's title, or (a right
    before the verb) the verb's own object the old certificate (延包后交回旧证)."""
    if not any(r in compact for r in _REISSUE) or any(c in between for c in _JOINED):
        return False
    return "证" in between or bool(_CERT_TITLE.match(compact, obj_end)) or \
        (verb_end is not None and verb_end not in (clauses or ())
         and compact.startswith(_OLD_PAPER, verb_end))


def _pair(compact: str, py: str, bounds: set[int], lex: dict, clauses=None,
          cpy=None) -> Hit | None:
    """A verb of giving up followed closely by a right, in characters or in pinyin."""
    verbs, objects, window = lex["pairs"]
    paper = False
    for v in verbs:
        for i in _find(compact, v, None):
            tail = compact[i + len(v):i + len(v) + window]
            obj = next((o for o in objects if o in tail), None)
            if obj and not _negated(compact, i, lex["neutral"], clauses):
                k = tail.find(obj)
                if _paper(compact, tail[:k], i + len(v) + k + len(obj)):
                    paper = True
                    continue
                return Hit("surrender", f"{v}…{obj}", "text")
    if paper and not re.search(r"[a-z]", compact):
        return None  # the same characters read again in pinyin: the paper, already judged
    for v, vp in lex["pairs_py"][0]:
        for i in _find(py, vp, bounds):
            tail_start = i + len(vp)
            tail = py[tail_start:tail_start + 6 * window]
            for o, op in lex["pairs_py"][1]:
                j = tail.find(op)
                if j != -1 and (tail_start + j) in bounds and \
                        not _negated_py(py, i, lex["neutral_py"], cpy):
                    return Hit("surrender", f"{v}…{o}", "pinyin")
    return None


def check(policy: str, text) -> list[Hit]:
    """The hits that `policy` refuses in `text`."""
    return list(_check(policy, str(text)))


@lru_cache(maxsize=4096)
def _check(policy: str, text: str) -> tuple[Hit, ...]:
    # the same reason text repeats (a batch's "survey import N", a bench's registrations): the
    # detection (normalising, pinyin) runs once per distinct (policy, text)
    hits = detect(text, POLICIES[policy])
    if policy == "register" and any(h.group in ("settlement", "urban") for h in hits):
        hits = _settling_as_cause(text, hits)
    return tuple(hits)


@lru_cache(maxsize=1)
def _register_words() -> dict:
    r = _data().get("register", {})

    def n(ws):
        return sorted({normalise(w) for w in ws}, key=len, reverse=True)

    return {"before": n(r.get("boundary_before", [])), "suffix": n(r.get("place_suffix", [])),
            "gap": int(r.get("place_gap", 3)), "distance": n(r.get("distance_after", [])),
            "work": n(r.get("work_after", [])), "change": n(r.get("change", []))}


def _descriptive(compact: str, start: int, word: str, w: dict) -> bool:
    """Whether the settling word at `start` only describes: a boundary or a place named after it
    (东至进城道路, 落户路), a distance (离村较远), working away (长期在外务工)."""
    end = start + len(word)
    before, after = compact[max(0, start - 2):start], compact[end:end + 2 + w["gap"]]
    if any(before.endswith(b) for b in w["before"]):
        return True
    if any(after[k:].startswith(s) for k in range(w["gap"] + 1) for s in w["suffix"]):
        return True
    if word.endswith("离村") and any(after.startswith(d) for d in w["distance"]):
        return True
    return any(after.startswith(x) for x in w["work"])


def _settling_as_cause(text: str, hits: list[Hit]) -> list[Hit]:
    """The register policy's reading of settling in a reason (农村土地承包法 art 27; 乡村振兴促进法
    art 55: settling never costs a right): a settling or town wording is refused unless every
    occurrence of it only describes (`_descriptive`) and the text names no right-affecting
    change (a lexicon `change` word or any surrender wording) — then settling is not given as
    the cause of anything.  A wording matched only in pinyin is never excused."""
    compact = normalise(text)
    w = _register_words()
    changes = any(c in compact for c in w["change"]) or bool(detect(text, ("surrender",)))
    if changes:
        return hits
    kept = []
    for h in hits:
        if h.group in ("settlement", "urban") and h.form == "text":
            n = normalise(h.word)
            found = list(_find(compact, n, None))
            if found and all(_descriptive(compact, i, n, w) for i in found):
                continue
        kept.append(h)
    return kept


def first_hit(policy: str, fields: dict) -> tuple[str, Hit] | None:
    """The first (field, hit) among a record's free-text fields, or None."""
    for name, value in fields.items():
        if value is None:
            continue
        values = value if isinstance(value, (list, tuple)) else [value]
        for v in values:
            hits = check(policy, str(v))
            if hits:
                return name, hits[0]
    return None
