"""A shapefile's .cpg names its encoding as each tool writes it ("ANSI 936", "GB_2312", "x-gbk",
"utf_8", "Windows-936" …): every spelling of a name the reader knows reads the text as that
encoding (GDAL knows only some and read the others as Latin-1 — every Chinese name staged
garbled, without a fault); a name it does not know refuses the layer by name when the layer
holds non-ASCII text (nothing staged garbled), and reads an all-ASCII layer as it is."""
from __future__ import annotations

import random

import pytest

from app.errors import DomainError
from gis import io as gio
from tests.test_import_sample import SAMPLE

SRC = SAMPLE / "矢量数据"


def _copy_with_cpg(tmp_path, stem: str, cpg: bytes):
    d = tmp_path / f"c{len(list(tmp_path.iterdir()))}"
    d.mkdir()
    for f in SRC.glob(stem + ".*"):
        (d / f.name).write_bytes(f.read_bytes())
    (d / (stem + ".cpg")).write_bytes(cpg)
    return d / (stem + ".shp")


def _texts(layer) -> list:
    return [tuple(v for v in attrs.values() if isinstance(v, str)) for _, attrs, _ in layer.rows()]


def _spellings(key: str, rng: random.Random) -> str:
    """One way a tool may write the name: separators between characters, any case, line ends."""
    out = ""
    for i, ch in enumerate(key):
        if i and rng.random() < 0.3:
            out += rng.choice(["-", "_", " "])
        out += ch
    out = rng.choice([out, out.lower(), out.title()])
    return rng.choice(["", " "]) + out + rng.choice(["", "\n", "\r\n"])


def test_every_spelling_of_a_gbk_name_reads_as_gbk(tmp_path):
    shp = next(SRC.glob("ZJD*.shp"))
    want = _texts(gio.read_layer(shp))
    assert any(not t.isascii() for row in want for t in row)  # the layer holds Chinese
    rng = random.Random(2312)
    for key in sorted(gio.GBK_NAMES):
        for _ in range(3):
            written = _spellings(key, rng)
            got = _texts(gio.read_layer(_copy_with_cpg(tmp_path, shp.stem, written.encode())))
            assert got == want, repr(written)
        # declared by the user instead of the .cpg: the same
        assert _texts(gio.read_layer(shp, encoding=_spellings(key, rng).strip())) == want


def _unknown_names(rng: random.Random, n: int) -> list[str]:
    known = gio.GBK_NAMES | gio.UTF8_NAMES
    names = ["KOI8-R", "ISO-8859-5", "BIG5", "Shift_JIS", "EUC-KR", "MacRoman", "1251"]
    while len(names) < n:
        w = "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") for _ in range(6))
        names.append(w)
    return [w for w in names if gio.cpg_key(w) not in known]


def test_an_unknown_encoding_refuses_a_layer_with_chinese_text_by_name(tmp_path):
    shp = next(SRC.glob("ZJD*.shp"))
    for name in _unknown_names(random.Random(7), 12):
        with pytest.raises(gio.CrsError) as e:
            gio.read_layer(_copy_with_cpg(tmp_path, shp.stem, name.encode()))
        assert e.value.reason == "encoding_unsupported"
        assert e.value.info["declared"] == name.strip()


def test_the_refusal_names_the_file_and_the_encoding_in_chinese(tmp_path, app):
    from app.imports import operations as ops

    shp = next(SRC.glob("ZJD*.shp"))
    with pytest.raises(gio.CrsError) as caught:
        gio.read_layer(_copy_with_cpg(tmp_path, shp.stem, b"KOI8-R"))
    with app.test_request_context():
        with pytest.raises(DomainError) as e:
            ops._refuse_crs(caught.value)
        assert e.value.code == "import.encoding_unsupported"
        zh = e.value.message("zh")
        assert shp.name in zh and "KOI8-R" in zh and "UTF-8" in zh and "编码" in zh


def test_an_all_ascii_layer_reads_whatever_its_cpg_says(tmp_path):
    """No byte above 0x7F: the text reads alike in any encoding, nothing to refuse."""
    import numpy as np

    shp = next(SRC.glob("ZJD*.shp"))
    d = _copy_with_cpg(tmp_path, shp.stem, b"KOI8-R")
    dbf = d.with_suffix(".dbf")
    raw = bytearray(dbf.read_bytes())
    hl = int.from_bytes(raw[8:10], "little")
    body = np.frombuffer(bytes(raw[hl:]), np.uint8).copy()
    body[body >= 0x80] = ord("x")  # every non-ASCII byte of the records made ASCII
    raw[hl:] = body.tobytes()
    dbf.write_bytes(bytes(raw))
    rows = _texts(gio.read_layer(d))
    assert rows and all(t.isascii() for row in rows for t in row)
