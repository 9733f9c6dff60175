"""Each role's home page in Chromium: the work first (待办), the menu on one line at 1280 px
with every group opening by keyboard, the menu collapsed behind a button on a 390 px phone;
screenshots at both sizes under test-artifacts/."""
import pytest
from playwright.sync_api import expect

from tests.conftest import PASSWORD

ROLES = ["admin", "bureau", "officer", "farmer", "hukou", "exchange", "auditor", "supervisor"]
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True,
         "has_touch": True, "locale": "zh-CN"}


def _login(page, live_server, username):
    page.goto(live_server + "/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("#login-submit")
    expect(page.locator("#dashboard-title")).to_be_visible()


def _menu_rows(page) -> list[float]:
    """The distinct vertical positions of the menu's top-level entries, and whether any label
    wraps (an entry taller than one line).  Measured once the page has loaded: the DOM can hold
    the menu before its stylesheet applies (CI once measured it unstyled, three rows)."""
    page.wait_for_load_state("load")
    return page.evaluate("""() => {
        const items = [...document.querySelectorAll('#menu > a, #menu > details > summary')];
        const tops = new Set(items.map(e => Math.round(e.getBoundingClientRect().top)));
        const lh = parseFloat(getComputedStyle(items[0]).lineHeight) || 24;
        const wraps = items.filter(e => e.getBoundingClientRect().height > lh * 1.6).length;
        const header = document.querySelector('header.top').getBoundingClientRect();
        return [tops.size, wraps, header.height, document.documentElement.scrollWidth];
    }""")


@pytest.mark.parametrize("who", ROLES)
def test_home_starts_with_the_work_and_the_menu_fits_one_line(browser, live_server, who):
    ctx = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 800})
    page = ctx.new_page()
    _login(page, live_server, who)
    expect(page.locator("#todo-title")).to_have_text("待办")
    rows, wraps, header_h, width = _menu_rows(page)
    assert rows == 1 and wraps == 0, (who, rows, wraps)
    assert header_h < 80 and width <= 1280, (who, header_h, width)
    # Every group opens from the keyboard and shows its entries.
    groups = page.locator("#menu details.group")
    for i in range(groups.count()):
        g = groups.nth(i)
        g.locator("summary").focus()
        page.keyboard.press("Enter")
        expect(g.locator(".panel a").first).to_be_visible()
        page.keyboard.press("Enter")
    page.screenshot(path=str(live_server.artifacts / f"home-{who}-1280.png"))
    ctx.close()


@pytest.mark.parametrize("who,path", [("farmer", "/"), ("farmer", "/me"),
                                      (None, "/market")])
def test_phone_pages_fit_390_px_and_the_menu_collapses(browser, live_server, who, path):
    ctx = browser.new_context(**PHONE)
    page = ctx.new_page()
    if who:
        _login(page, live_server, who)
    page.goto(live_server + path)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    expect(page.locator("#menu")).to_be_hidden()
    page.locator(".menu-button").tap()
    expect(page.locator("#menu")).to_be_visible()
    expect(page.locator("#nav-market")).to_be_visible()
    name = (who or "public") + path.replace("/", "-").rstrip("-")
    page.screenshot(path=str(live_server.artifacts / f"phone-{name}-390.png"), full_page=True)
    ctx.close()
