"""The map shows parcels from the vector tiles; a click opens the parcel page with its sketch."""
from playwright.sync_api import expect

from tests.conftest import PASSWORD


def test_map_tiles_click_opens_parcel_page(page, live_server):
    page.goto(live_server + "/login")
    page.fill("input[name=username]", "bureau")
    page.fill("input[name=password]", PASSWORD)
    page.click("#login-submit")
    page.goto(live_server + "/map")
    page.wait_for_function(
        "() => window.sanquanMap && window.sanquanMap.loaded() && "
        "window.sanquanMap.queryRenderedFeatures({layers: ['parcel-fill']}).length > 0",
        timeout=30000)
    n = page.evaluate("window.sanquanMap.queryRenderedFeatures({layers: ['parcel-fill']}).length")
    assert n > 50
    # Zoom in on one rendered parcel and click inside it.
    page.evaluate("""() => {
        const m = window.sanquanMap;
        const f = m.queryRenderedFeatures({layers: ['parcel-fill']})[0];
        window.__target = f.properties.code;
        const ring = f.geometry.type === 'Polygon' ? f.geometry.coordinates[0]
                                                   : f.geometry.coordinates[0][0];
        let x = 0, y = 0;
        for (const c of ring) { x += c[0]; y += c[1]; }
        m.jumpTo({center: [x / ring.length, y / ring.length], zoom: 18});
    }""")
    page.wait_for_function("() => window.sanquanMap.loaded() && "
                           "window.sanquanMap.queryRenderedFeatures({layers: ['parcel-fill']})"
                           ".length > 0", timeout=30000)
    box = page.locator("#map canvas").bounding_box()
    code = page.evaluate("""() => {
        const m = window.sanquanMap, c = m.getCanvas();
        const f = m.queryRenderedFeatures([c.clientWidth / 2, c.clientHeight / 2],
                                          {layers: ['parcel-fill']})[0];
        return f ? f.properties.code : null; }""")
    assert code
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    expect(page.locator("#parcel-code")).to_have_text(code)
    expect(page.locator("#sketch svg .subject")).to_have_count(1)
    expect(page.locator("#sketch svg .scale-bar")).to_have_count(1)
    page.screenshot(path=str(live_server.artifacts / "parcel.png"), full_page=True)
