"""A live server on a free loopback port and Debian's Chromium driven by Playwright."""
import os
import shutil
import socket
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

CHROMIUM = os.environ.get("CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


class Live(str):
    artifacts: Path


@pytest.fixture(scope="session")
def live_server(app):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = make_server("127.0.0.1", port, app, threaded=True)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    url = Live(f"http://127.0.0.1:{port}")
    ARTIFACTS.mkdir(exist_ok=True)
    url.artifacts = ARTIFACTS
    yield url
    server.shutdown()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--no-first-run", "--disable-quic"])
        yield b
        b.close()


@pytest.fixture()
def page(browser):
    ctx = browser.new_context(locale="zh-CN")
    pg = ctx.new_page()
    yield pg
    ctx.close()
