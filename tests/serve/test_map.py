"""The city map in real headless Chromium (Debian's): it renders the layers the reader may see, a click
opens the feature's popup, and not one request leaves the server."""

from __future__ import annotations

import pathlib
import urllib.parse

import pytest
from playwright.sync_api import sync_playwright

pytestmark = [pytest.mark.slow, pytest.mark.browser]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--use-gl=angle", "--use-angle=swiftshader",
                 "--enable-unsafe-swiftshader"]
PUBLIC_TITLES = {"Emergency shelters and evacuation points", "Pumping stations"}


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def open_map(browser, server: str, requests: list[str]):
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    problems: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.on("response", lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.goto(server + "/", wait_until="load")
    try:  # the page's CSP forbids eval, so no wait_for_function: the page marks its own progress
        page.wait_for_selector("body[data-loaded]", timeout=180_000, state="attached")
        page.wait_for_selector("body[data-idle]", timeout=180_000, state="attached")
    except Exception as exc:
        raise AssertionError(f"the map did not finish drawing: {problems}") from exc
    return page


def titles(page) -> set[str]:
    return {t.strip() for t in page.locator("#layers .layer span:last-child").all_inner_texts()}


def test_the_map_shows_the_public_layers_and_a_click_opens_the_popup(browser, server, tmp_path):
    requests: list[str] = []
    page = open_map(browser, server, requests)
    assert titles(page) == PUBLIC_TITLES  # no internal layer without a token
    shot = tmp_path / "map.png"
    page.screenshot(path=str(shot))
    assert shot.stat().st_size > 10_000
    rendered = page.evaluate("window.twinhubMap.queryRenderedFeatures().filter(f => f.layer.id.endsWith(':point'))"
                             ".map(f => ({id: f.layer.metadata.collection, name: f.properties.name, "
                             "xy: window.twinhubMap.project(f.geometry.coordinates)}))")
    shelters = [f for f in rendered if f["id"] == "emergency.shelters"]
    assert shelters, "no shelter was drawn"
    target = shelters[0]
    page.mouse.click(320 + target["xy"]["x"], target["xy"]["y"])  # the map sits right of the 320 px panel
    popup = page.wait_for_selector(".maplibregl-popup-content", timeout=10_000)
    text = popup.inner_text()
    assert "Emergency shelters" in text and "emergency" in text
    assert any(f["name"] in text for f in shelters)
    origin = urllib.parse.urlsplit(server)
    outside = [u for u in requests if not u.startswith(("blob:", "data:"))
               and urllib.parse.urlsplit(u)[:2] != origin[:2]]
    assert outside == []
    page.close()


def test_a_token_shows_the_consumers_layers_and_search_finds_a_feature(browser, server, health_token):
    requests: list[str] = []
    page = open_map(browser, server, requests)
    page.fill("#token", health_token)
    page.click("#login button[type=submit]")
    page.wait_for_selector("#layers .layer:nth-of-type(3), #layers h3:nth-of-type(3)", timeout=60_000)
    page.wait_for_selector("#reader:has-text('your token')", timeout=60_000)
    assert {"Elderly care facilities"} | PUBLIC_TITLES <= titles(page)
    page.fill("#q", "Shelter 2")
    page.press("#q", "Enter")
    page.wait_for_selector("#results li", timeout=30_000)
    assert any("Shelter 2" in t for t in page.locator("#results li").all_inner_texts())
    assert not any(health_token in u for u in requests)  # the token travels in a header, never a URL
    page.close()


def test_the_map_page_forbids_any_other_origin(server):
    import urllib.request

    with urllib.request.urlopen(urllib.request.Request(server + "/", headers={"Accept": "text/html"})) as response:
        csp = response.headers["Content-Security-Policy"]
        html = response.read().decode()
    assert "default-src 'self'" in csp and "connect-src 'self'" in csp
    assert "http://" not in html and "https://" not in html
    assert pathlib.Path(__file__).exists()
