"""Code lists of NY/T 2539 with their labels (English msgids, translated by the catalogue).

`N_` only marks a string for extraction; callers translate with gettext when they show it, so
this module needs no Flask and serves the certificate renderer's worker processes too."""


def N_(s: str) -> str:  # noqa: N802 - the conventional gettext marker
    return s


# NY/T 2539-2016: a contracting party's code CBFBM is its issuing party's FBFBM (14 digits) and a
# 4-digit sequence in the range of its type CBFLX. Defined once, here (a module that never changes
# meaning, so migrations may import it): app.people (Python), app.imports (validation SQL), the
# Household model and migration 0001 (the CHECK constraint) all read it.
CBFBM_SEQUENCE = {"1": (1, 8000), "2": (8001, 9000), "3": (9001, 9999)}


def cbfbm_sequence_sql(code: str = "cbfbm", kind: str = "cbflx") -> str:
    """The SQL condition "code's sequence is in the range of its type" for two SQL expressions."""
    return " OR ".join(f"({kind} = '{t}' AND substr({code}, 15, 4) BETWEEN '{lo:04d}' AND "
                       f"'{hi:04d}')" for t, (lo, hi) in CBFBM_SEQUENCE.items())


RELATION = {  # YHZGX, relation to the head of household
    "01": N_("self"), "02": N_("head of household"), "10": N_("spouse"), "11": N_("husband"),
    "12": N_("wife"), "20": N_("son"), "30": N_("daughter"), "51": N_("father"),
    "52": N_("mother"), "97": N_("other relative"), "99": N_("not related"),
}
PARCEL_CLASS = {  # DKLB
    "10": N_("contract land"), "21": N_("private plot"), "22": N_("reserve land"),
    "23": N_("reclaimed land"), "99": N_("other collective land"),
}
RIGHT_KIND = {
    "land_contract": N_("land-contract right"), "homestead": N_("homestead use right"),
    "management": N_("land management right"),
}
CERTIFICATE_TITLE = {
    "land_contract": N_("Rural Land Contract Management Right Certificate"),
    "homestead": N_("Real Property Right Certificate (homestead use right)"),
}
ISSUE_KIND = {"first": N_("first issue"), "reissue": N_("reissue (lost or destroyed)"),
              "replacement": N_("replacement (damaged or changed)")}
CERTIFICATE_STATUS = {"valid": N_("valid"), "superseded": N_("superseded by a later edition"),
                      "cancelled": N_("cancelled")}
PROVINCE_ABBR = {"11": "京", "12": "津", "13": "冀", "14": "晋", "15": "蒙", "21": "辽", "22": "吉",
                 "23": "黑", "31": "沪", "32": "苏", "33": "浙", "34": "皖", "35": "闽", "36": "赣",
                 "37": "鲁", "41": "豫", "42": "鄂", "43": "湘", "44": "粤", "45": "桂", "46": "琼",
                 "50": "渝", "51": "川", "52": "贵", "53": "云", "54": "藏", "61": "陕", "62": "甘",
                 "63": "青", "64": "宁", "65": "新"}


def label(table: dict, code, gettext=lambda s: s) -> str:
    """The translated label of a code, or the code itself when the list does not know it."""
    if code is None or code == "":
        return ""
    return gettext(table[code]) if code in table else str(code)
CAMPAIGN_STAGE = {"draft": N_("preparation"), "notice": N_("public notice"),
                  "registered": N_("registered"), "certified": N_("certificates issued")}
OBJECTION_SUBJECT = {"parcel": N_("the parcel"), "boundary": N_("a boundary"),
                     "area": N_("the area"), "holder": N_("the holder")}
OBJECTION_STATUS = {"open": N_("open"), "upheld": N_("upheld"), "dismissed": N_("dismissed")}
SETTLEMENT_BASIS = {"owned_house": N_("owned housing"), "rental": N_("registered rental"),
                    "dormitory": N_("employer's dormitory")}
SETTLEMENT_STATUS = {"submitted": N_("submitted"), "approved": N_("approved"),
                     "rejected": N_("refused")}
SETTLEMENT_DESTINATION = {"house_address": N_("the house's own address"),
                          "employer_collective": N_("the employer's collective household"),
                          "community_collective": N_("a community collective household")}
SETTLEMENT_RELATION = {"self": N_("applicant"), "spouse": N_("spouse"),
                       "child": N_("unmarried child"), "parent": N_("parent")}
WITHDRAWAL_STATUS = {"consent": N_("awaiting co-holders' consent"),
                     "check": N_("awaiting the voluntariness check"),
                     "cooling": N_("cooling-off"), "effective": N_("effective"),
                     "revoked": N_("revoked")}
