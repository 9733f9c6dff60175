"""validation.json_num_sql reads a staged attribute exactly as import_num reads its text:
whatever the JSON value — a number of any size or sign, a numeric text with spaces, an
exponent, garbage, null, an object — the two agree, and neither raises."""
import json
import math

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from app.extensions import db
from app.imports.validation import json_num_sql

numbers = st.one_of(
    st.integers(min_value=-(2 ** 63), max_value=2 ** 63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.decimals(allow_nan=False, allow_infinity=False, places=3).map(str),
)
# PostgreSQL's jsonb holds no U+0000 (it refuses the whole document: a property of jsonb, not of
# the reading under test), so the generated texts and keys leave it out
chars = st.characters(exclude_characters="\x00")
texts = st.one_of(
    numbers.map(lambda v: f" {v} "),
    st.text(alphabet="0123456789.-+eE ,x", max_size=12),
    st.text(chars, max_size=8),
)
values = st.one_of(numbers, texts, st.none(), st.booleans(),
                   st.lists(st.integers(), max_size=2), st.dictionaries(st.text(chars, max_size=2),
                                                                         st.integers(), max_size=2))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@example(batch=[2.2e-309, 1e-250, 5e-324, 1e-199, 1e305, -0.0])  # drawn once: subnormal, tiny
@given(batch=st.lists(values, min_size=1, max_size=20))
def test_a_json_number_reads_as_its_text_does(dbs, batch):
    docs = [json.dumps({"SCMJ": v}) for v in batch]
    rows = db.session.execute(text("""
        SELECT """ + json_num_sql("d->'SCMJ'") + """ AS j, import_num(d->>'SCMJ') AS t
        FROM unnest(CAST(:docs AS jsonb[])) AS d"""), {"docs": docs}).all()
    assert len(rows) == len(batch)
    for v, (j, t) in zip(batch, rows, strict=True):
        if t is None or j is None:
            # the text form of a huge JSON number (≥ 1e300) is all digits: the pattern takes
            # it, the guard leaves it (float8 would overflow); every other value agrees exactly
            assert t == j or (isinstance(v, (int, float)) and abs(v) >= 1e300), (v, j, t)
        else:
            assert math.isclose(j, t, rel_tol=1e-12, abs_tol=0.0), (v, j, t)


def test_the_area_check_reads_a_json_number_a_text_and_a_null(dbs):
    """SCMJ as a number, as text, as JSON null (then ZDMJ, as a homestead delivers it)."""
    got = db.session.execute(text("""
        SELECT """ + json_num_sql("coalesce(nullif(d->'SCMJ', 'null'::jsonb), d->'ZDMJ')") + """
        FROM unnest(CAST(:docs AS jsonb[])) WITH ORDINALITY AS x(d, n) ORDER BY n"""),
        {"docs": ['{"SCMJ": 12.5}', '{"SCMJ": " 12.5 "}', '{"SCMJ": null, "ZDMJ": 7}',
                  '{"ZDMJ": "3e2"}', '{"SCMJ": "12,5"}', '{}']}).scalars().all()
    assert got == [12.5, 12.5, 7.0, 300.0, None, None]
