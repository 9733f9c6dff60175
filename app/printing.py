"""Printable documents served by the app: a template rendered to PDF in the reader's language.

Infrastructure below every feature (certificates, campaigns, settlement, market print through it).
The template rendering and the PDF writer are pure: no Flask, no database — so a batch can render in
worker processes.  Strings go through the gettext catalogue."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from flask import Response
from flask_babel import get_locale

from app import codes

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = ROOT / "templates"
TRANSLATIONS = ROOT / "app" / "translations"


@lru_cache(maxsize=4)
def _env(locale: str):
    from babel.support import Translations
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), extensions=["jinja2.ext.i18n"],
                      autoescape=select_autoescape(["html"]))
    translations = Translations.load(str(TRANSLATIONS), [locale])
    env.install_gettext_translations(translations, newstyle=True)
    env.globals["code_label"] = lambda table, code: codes.label(
        getattr(codes, table), code, translations.gettext)
    return env


def qr_svg(url: str) -> str:
    import segno

    return segno.make(url, error="m").svg_inline(scale=3, border=2)


def pdf_from_html(page: str, cache_dir: str | None = None) -> bytes:
    """The PDF of an HTML page, rendered once per content digest: with `cache_dir`, the PDF is
    kept as <sha256 of the page>.pdf and served from there next time (a page that renders the
    same bytes is the same document), so looping a 2-second render costs one render."""
    import hashlib
    import os

    from weasyprint import HTML

    path = None
    if cache_dir:
        digest = hashlib.sha256(page.encode("utf-8")).hexdigest()
        path = Path(cache_dir) / digest[:2] / f"{digest}.pdf"
        try:
            return path.read_bytes()
        except FileNotFoundError:
            pass
    data = HTML(string=page, base_url=str(ROOT)).write_pdf()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)  # atomic: a concurrent reader sees the whole file or none
    return data


def render_document(template: str, context: dict, locale: str = "zh",
                    cache_dir: str | None = None) -> bytes:
    """Any other printable document (the public notice list) from a template."""
    page = _env(locale).get_template(template).render(**context)
    return pdf_from_html(page, cache_dir)



def pdf_response(data: bytes, filename: str) -> Response:
    return Response(data, mimetype="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="{filename}"'})


def printed(template: str, filename: str, **context) -> Response:
    """`template` (a standalone HTML page) as a PDF, in the current locale."""
    from flask import current_app

    return pdf_response(render_document(template, context, str(get_locale()),
                                        current_app.config.get("PDF_CACHE_DIR")), filename)
