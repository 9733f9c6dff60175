"""A person signs in, switches language and sees the dashboard — in headless Debian Chromium."""
from playwright.sync_api import expect

from tests.conftest import PASSWORD


def test_sign_in_switch_language_and_see_dashboard(page, live_server):
    page.goto(live_server + "/")
    expect(page).to_have_url(live_server + "/login?next=/")
    expect(page.locator("h1")).to_have_text("登录")
    page.fill("input[name=username]", "bureau")
    page.fill("input[name=password]", PASSWORD)
    page.click("#login-submit")
    expect(page.locator("#dashboard-title")).to_have_text("工作台")
    expect(page.locator(".tile").first).to_be_visible()
    page.click("#lang-en")
    expect(page.locator("#dashboard-title")).to_have_text("Dashboard")
    expect(page.locator("footer")).to_contain_text("Settling in town never requires")
    page.screenshot(path=str(live_server.artifacts / "dashboard-en.png"), full_page=True)
    page.click("#lang-zh")
    expect(page.locator("#dashboard-title")).to_have_text("工作台")


def test_wrong_password_shows_a_message(page, live_server):
    page.goto(live_server + "/login")
    page.fill("input[name=username]", "bureau")
    page.fill("input[name=password]", "wrong-password")
    page.click("#login-submit")
    expect(page.locator(".flash.error")).to_contain_text("用户名或密码错误")
