"""Printable documents served by the app: a template rendered to PDF in the reader's language."""
from flask import Response
from flask_babel import get_locale


def pdf_response(data: bytes, filename: str) -> Response:
    return Response(data, mimetype="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="{filename}"'})


def printed(template: str, filename: str, **context) -> Response:
    """`template` (a standalone HTML page) as a PDF, in the current locale."""
    from flask import current_app

    from app.certificates.render import render_document

    return pdf_response(render_document(template, context, str(get_locale()),
                                        current_app.config.get("PDF_CACHE_DIR")), filename)
