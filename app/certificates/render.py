"""Certificate PDFs (WeasyPrint, Noto CJK fonts), rendered from a frozen content snapshot.

Pure: no Flask, no database — so a batch can render in worker processes.  The template is
`templates/certificates/certificate.html`; the renderer itself is app.printing's."""
from __future__ import annotations

from app.printing import ROOT, _env, pdf_from_html, qr_svg

__all__ = ["html", "render_pdf", "render_batch", "qr_svg", "pdf_from_html"]


def html(content: dict, locale: str = "zh", template: str = "certificates/certificate.html") \
        -> str:
    return _env(locale).get_template(template).render(c=content, qr=qr_svg(content["verify_url"]))


def render_pdf(content: dict, locale: str = "zh", cache_dir: str | None = None) -> bytes:
    return pdf_from_html(html(content, locale), cache_dir)


def render_batch(contents: list[dict], locale: str = "zh") -> tuple[bytes, list[tuple[int, int]]]:
    """For a worker process: several certificates as one print file, laid out one by one and
    written together (fonts embedded once).  Returns the PDF and each certificate's first and
    last page (1-based)."""
    from weasyprint import HTML

    docs = [HTML(string=html(c, locale), base_url=str(ROOT)).render() for c in contents]
    ranges, page = [], 1
    for d in docs:
        ranges.append((page, page + len(d.pages) - 1))
        page += len(d.pages)
    pages = [p for d in docs for p in d.pages]
    return docs[0].copy(pages).write_pdf(), ranges
