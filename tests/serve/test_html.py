"""The OGC API's HTML pages (`?f=html`, `Accept: text/html`) from `twinhub serve`: the same access as JSON,
errors that say no more than JSON's, paging links, links to the map, the GeoJSON and the Dagster asset; a
department's hostile title and attribute values stay text in real headless Chromium (no script runs, even
with the page's CSP bypassed), Chinese text is rendered, and no request leaves the server."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import urllib.error
import urllib.parse
import urllib.request

import pytest
import yaml
from playwright.sync_api import sync_playwright

from twinhub import sample
from twinhub.catalog.query import run_query
from twinhub.cli.demo import prepare_demo
from twinhub.hub.home import Hub
from twinhub.hub.registration import register
from twinhub.pipelines.runner import run_datasets
from twinhub.serve.html import CONFORMANCE

from .test_map import CHROMIUM, CHROMIUM_ARGS

XSS = "xss_shelters"
PAYLOAD_TITLE = '避难所 <script>window.xssRan=1</script><img src=x onerror="window.xssRan=2">'
PAYLOAD_NAME = '"><svg onload="window.xssRan=3"></svg><script>window.xssRan=4</script>淮海中路'
PAYLOAD_ADDRESS = "</td></tr></table><iframe src=\"javascript:window.xssRan=5\"></iframe>"
INTERNAL_TITLE = "Elderly care facilities"


@pytest.fixture(scope="module")
def served_hub(tmp_path_factory) -> Hub:
    """The sample city and an emergency dataset whose title and attribute values are XSS payloads."""
    root = tmp_path_factory.mktemp("html")
    hub = Hub.open(root / "home")
    prepare_demo(hub)
    folder = root / "xss"
    folder.mkdir()
    manifest = yaml.safe_load((sample.CITY / "emergency/shelters.yaml").read_text(encoding="utf-8"))
    manifest.update(dataset=XSS, title=PAYLOAD_TITLE)
    source = json.loads((sample.CITY / "emergency/shelters.geojson").read_text(encoding="utf-8"))
    source["features"][1]["properties"].update(  # EM-002 (EM-001 is a planted duplicate)
        name=PAYLOAD_NAME, address=PAYLOAD_ADDRESS)
    (folder / "shelters.geojson").write_text(json.dumps(source, ensure_ascii=False), encoding="utf-8")
    (folder / "shelters.yaml").write_text(yaml.safe_dump(manifest, allow_unicode=True), encoding="utf-8")
    register(hub, folder / "shelters.yaml")
    assert run_datasets(hub).ok
    return hub


def get(url: str, accept: str | None = None, token: str | None = None) -> tuple[int, dict, str]:
    headers = {"Accept": accept} if accept else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=60) as response:
            return response.status, response.headers, response.read().decode("utf-8")
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read().decode("utf-8")


def hrefs(page: str) -> list[str]:
    return [h.replace("&amp;", "&") for h in re.findall(r'href="([^"]*)"', page)]


def test_the_html_class_is_declared_and_json_answers_link_their_html_page(server):
    _, _, body = get(f"{server}/conformance")
    assert CONFORMANCE in json.loads(body)["conformsTo"]
    for path in ("/?f=json", "/collections", "/collections/emergency.shelters", "/collections/emergency.shelters/items",
                 "/collections/emergency.shelters/items/EM-002"):
        status, headers, body = get(server + path)
        assert status == 200 and "application/" in headers["Content-Type"], path
        links = [x for x in json.loads(body)["links"] if x["rel"] == "alternate"]
        assert [x["type"] for x in links] == ["text/html"], path
        assert "f=html" in links[0]["href"] and headers["Vary"] == "Accept"


@pytest.mark.parametrize("path", ["/?f=html", "/conformance?f=html", "/collections?f=html",
                                  "/collections/emergency.shelters?f=html", "/collections/emergency.shelters/items?f=html",
                                  "/collections/emergency.shelters/items/EM-002?f=html",
                                  "/collections/emergency.shelters/queryables?f=html", "/api.html", "/api?f=html"])
def test_every_part_1_resource_has_a_page_behind_the_same_csp(server, path):
    status, headers, body = get(server + path)
    assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
    assert body.startswith("<!doctype html>") and "<script" not in body
    assert headers["Content-Security-Policy"].startswith("default-src 'self'")
    assert not [h for h in hrefs(body) if h.startswith(("http:", "https:", "//")) and "127.0.0.1:3000" not in h]


def test_the_landing_pages_service_doc_is_the_definition_as_a_page(server):
    _, _, body = get(f"{server}/?f=json")
    (doc,) = [x["href"] for x in json.loads(body)["links"] if x["rel"] == "service-doc"]
    status, headers, page = get(doc)
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert "<code>/collections/{cid}/items/{fid}</code>" in page and "One feature" in page


def test_accept_text_html_gets_the_page_and_a_browser_at_the_root_still_gets_the_map(server):
    status, headers, body = get(f"{server}/collections", accept="text/html,application/xhtml+xml,*/*;q=0.8")
    assert status == 200 and headers["Content-Type"].startswith("text/html") and "Pumping stations" in body
    _, headers, body = get(f"{server}/collections", accept="application/geo+json, application/json")
    assert headers["Content-Type"] == "application/json" and json.loads(body)["collections"]
    _, headers, body = get(f"{server}/", accept="text/html")
    assert 'id="map"' in body  # the map's page


def test_anonymous_pages_show_public_collections_only_and_a_token_opens_its_grants(server, health_token):
    _, _, public = get(f"{server}/collections?f=html")
    assert "Emergency shelters and evacuation points" in public and INTERNAL_TITLE not in public
    _, _, granted = get(f"{server}/collections?f=html", token=health_token)
    assert INTERNAL_TITLE in granted
    status, _, page = get(f"{server}/collections/civil_affairs.elderly_care/items?f=html", token=health_token)
    assert status == 200 and "Items of civil_affairs.elderly_care" in page


@pytest.mark.parametrize("path", ["/collections/civil_affairs.elderly_care", "/collections/civil_affairs.elderly_care/items",
                                  "/collections/civil_affairs.elderly_care/items/CA-001", "/collections/no.such",
                                  "/collections/emergency.shelters/items/NO-SUCH"])
def test_an_error_page_has_the_json_status_and_says_nothing_more(server, served_hub, path):
    json_status, _, json_body = get(server + path)
    status, headers, page = get(server + path + "?f=html")
    assert status == json_status and status in (403, 404) and headers["Content-Type"].startswith("text/html")
    assert json.loads(json_body)["description"].replace("'", "&#39;") in page
    names = [n for n, in run_query(served_hub.lake, "SELECT name FROM civil_affairs.elderly_care").rows]
    assert INTERNAL_TITLE not in page and not [n for n in names if n in page]
    assert get(server + path, accept="text/html")[0] == json_status


def test_a_bad_token_gets_the_401_page_with_its_challenge(server):
    status, headers, page = get(f"{server}/collections?f=html", token="th_nope_nope")
    assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer") and "InvalidToken" in page


def test_items_pages_link_next_and_previous_until_every_feature_is_seen(server, served_hub):
    url, seen, pages = f"{server}/collections/water.pumping_stations/items?f=html&limit=4", [], 0
    while url:
        status, _, page = get(url)
        assert status == 200
        seen += re.findall(r'href="/collections/water\.pumping_stations/items/([^"?]+)\?f=html"', page)
        prev = re.findall(r'<a href="([^"]+)" rel="prev">', page)
        assert bool(prev) == (pages > 0)
        if prev:  # the previous page starts where this one's predecessor did
            assert f"offset={4 * (pages - 1)}" in prev[0]
        following = re.findall(r'<a href="([^"]+)" rel="next">', page)
        url = server + following[0].replace("&amp;", "&") if following else None
        pages += 1
        assert pages < 50
    total = run_query(served_hub.lake, "SELECT count(*) FROM water.pumping_stations").rows[0][0]
    assert len(seen) == len(set(seen)) == total and pages == -(-total // 4)


def test_an_item_page_links_the_map_on_it_its_geojson_and_its_dagster_asset(server):
    _, _, page = get(f"{server}/collections/emergency.shelters/items/EM-002?f=html")
    links = hrefs(page)
    assert "/collections/emergency.shelters/items/EM-002?f=json" in links
    assert "http://127.0.0.1:3000/assets/emergency/shelters" in links
    (focus,) = [h for h in links if h.startswith("/map#")]
    fragment = dict(urllib.parse.parse_qsl(focus.split("#", 1)[1]))
    _, _, body = get(f"{server}/collections/emergency.shelters/items/EM-002")
    lon, lat = json.loads(body)["geometry"]["coordinates"]
    assert fragment["collection"] == "emergency.shelters" and fragment["item"] == "EM-002"
    x0, y0, x1, y1 = map(float, fragment["bbox"].split(","))
    assert abs(x0 - lon) < 1e-6 and abs(y1 - lat) < 1e-6


def test_without_a_dagster_url_no_page_links_one_and_a_timeout_is_a_503_page(served_hub):
    from fastapi.testclient import TestClient

    from twinhub.serve.app import create_app

    client = TestClient(create_app(served_hub), raise_server_exceptions=False)
    for path in ("/collections/emergency.shelters", "/collections/emergency.shelters/items",
                 "/collections/emergency.shelters/items/EM-002"):
        page = client.get(path, params={"f": "html"})
        assert page.status_code == 200 and "Dagster" not in page.text and "/map#bbox=" in page.text
    slow = TestClient(create_app(served_hub, budget_s=0.0), raise_server_exceptions=False)
    page = slow.get("/collections/emergency.shelters/items", headers={"Accept": "text/html"})
    assert page.status_code == 503 and page.headers["Retry-After"] == "5" and "ServiceUnavailable" in page.text
    assert "shelter" not in page.text.split("<main>", 1)[1].lower()


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--headless", *CHROMIUM_ARGS])
        yield browser
        browser.close()


def xss_item(served_hub) -> str:
    rows = run_query(served_hub.lake, f"SELECT facility_id FROM emergency.{XSS} WHERE name LIKE '%svg%'").rows
    assert len(rows) == 1, "the payload row was not published"
    return rows[0][0]


@pytest.mark.slow
def test_hostile_titles_and_values_stay_text_in_chromium_even_without_the_csp(browser, server, served_hub):
    fid = xss_item(served_hub)
    # the CSP would stop an injected script anyway: bypass it, so only escaping keeps these pages inert
    context = browser.new_context(bypass_csp=True)
    page = context.new_page()
    requests, dialogs = [], []
    page.on("request", lambda r: requests.append(r.url))
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    cid = f"emergency.{XSS}"
    for path, shown in [("/collections", [PAYLOAD_TITLE]), (f"/collections/{cid}", [PAYLOAD_TITLE]),
                        (f"/collections/{cid}/items?limit=100", [PAYLOAD_NAME, PAYLOAD_ADDRESS]),
                        (f"/collections/{cid}/items/{urllib.parse.quote(fid)}", [PAYLOAD_NAME, PAYLOAD_ADDRESS])]:
        page.goto(f"{server}{path}?f=html" if "?" not in path else f"{server}{path}&f=html", wait_until="load")
        text = page.inner_text("main")
        if PAYLOAD_TITLE in shown and path != "/collections":
            assert PAYLOAD_TITLE in page.title()  # the <title> too
        for value in shown:
            assert value in text, (path, value)  # shown as the text it is, Chinese included
        assert page.evaluate("window.xssRan") is None, path
        assert page.evaluate("document.querySelectorAll('script, img, svg, iframe, [onerror], [onload]').length") == 0
    assert dialogs == []
    origin = urllib.parse.urlsplit(server)[:2]
    assert [u for u in requests if urllib.parse.urlsplit(u)[:2] != origin] == []
    context.close()


@pytest.mark.slow
def test_chinese_text_is_drawn_with_a_cjk_font(browser, server):
    page = browser.new_page()
    page.goto(f"{server}/collections/emergency.shelters/items/EM-002?f=html", wait_until="load")
    assert "四川北路" in page.inner_text("main")
    cdp = page.context.new_cdp_session(page)  # which fonts Chromium really drew the cell's glyphs with
    cdp.send("DOM.enable")
    cdp.send("CSS.enable")
    root = cdp.send("DOM.getDocument")["root"]["nodeId"]
    cells = cdp.send("DOM.querySelectorAll", {"nodeId": root, "selector": "td"})["nodeIds"]
    texts = [cdp.send("DOM.getOuterHTML", {"nodeId": n})["outerHTML"] for n in cells]
    (cell,) = [n for n, t in zip(cells, texts) if "四川北路" in t and "Shelter" in t]
    fonts = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": cell})["fonts"]
    cjk = [f for f in fonts if "CJK" in f["familyName"]]
    assert cjk and sum(f["glyphCount"] for f in cjk) >= 4, fonts  # the four hanzi, none as an empty box
    page.close()


@pytest.mark.slow
def test_the_map_link_of_an_item_opens_the_map_on_it(browser, server):
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(f"{server}/collections/emergency.shelters/items/EM-002?f=html", wait_until="load")
    page.click("text=On the map")
    page.wait_for_selector("body[data-loaded]", timeout=180_000, state="attached")
    page.wait_for_selector(".maplibregl-popup-content", timeout=120_000)
    popup = page.inner_text(".maplibregl-popup-content")
    _, _, body = get(f"{server}/collections/emergency.shelters/items/EM-002")
    feature = json.loads(body)
    assert feature["properties"]["name"] in popup
    lon, lat = feature["geometry"]["coordinates"]
    center = page.evaluate("(() => { const c = window.twinhubMap.getCenter(); return [c.lng, c.lat, "
                           "window.twinhubMap.getZoom()]; })()")
    assert abs(center[0] - lon) < 1e-3 and abs(center[1] - lat) < 1e-3 and center[2] >= 15
    page.close()


def test_gdal_still_reads_the_json(server, served_hub):
    """GDAL's OAPIF driver lists the collections and reads them whole: it never gets a page."""
    ogrinfo = shutil.which("ogrinfo")
    listing = subprocess.run([ogrinfo, "-ro", f"OAPIF:{server}/"], capture_output=True, text=True, check=True,
                             timeout=120).stdout
    assert f"emergency.{XSS}" in listing and "emergency.shelters" in listing
    out = subprocess.run([ogrinfo, "-ro", "-q", "-al", f"OAPIF:{server}/", "emergency.shelters"], capture_output=True,
                         text=True, check=True, timeout=120).stdout
    total = run_query(served_hub.lake, "SELECT count(*) FROM emergency.shelters").rows[0][0]
    assert out.count("OGRFeature(") == total and "<html" not in out
