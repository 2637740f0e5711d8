"""OGC API – Features from `twinhub serve`, read by GDAL's own OAPIF driver and by plain HTTP,
under the same access rule as `twinhub query --as`."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from email.message import Message

import pytest

from twinhub.catalog.query import run_query

pytestmark = pytest.mark.slow
PUBLIC = {"emergency.shelters", "water.pumping_stations"}  # the sample city's public datasets


def get(url: str, token: str | None = None, headers: dict | None = None) -> tuple[int, Message, dict]:
    request = urllib.request.Request(url, headers={**({"Authorization": f"Bearer {token}"} if token else {}),
                                                   **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, error.headers, json.load(error)


def ogr(*args: str, token: str | None = None) -> str:
    ogrinfo = shutil.which("ogrinfo")
    assert ogrinfo, "GDAL's ogrinfo is missing: apt-get install gdal-bin (.ci/run does)"
    config = ["--config", "GDAL_HTTP_HEADERS", f"Authorization: Bearer {token}"] if token else []
    return subprocess.run([ogrinfo, *config, *args], capture_output=True, text=True, check=True, timeout=120).stdout


def catalog_count(hub, table: str) -> int:
    return run_query(hub.lake, f"SELECT count(*) FROM {table}").rows[0][0]


def test_gdal_lists_only_the_public_collections_without_a_token(server):
    out = ogr("-ro", f"OAPIF:{server}/")
    layers = {line.split(": ", 1)[1].split(" (")[0] for line in out.splitlines() if line[:1].isdigit()}
    assert layers == PUBLIC


@pytest.mark.parametrize("collection", sorted(PUBLIC))
def test_gdal_reads_each_collection_with_the_catalogs_count_and_crs(server, served_hub, collection):
    out = ogr("-ro", "-so", f"OAPIF:{server}/", collection)
    assert f"Feature Count: {catalog_count(served_hub, collection)}" in out
    assert 'ID["EPSG",4326]' in out
    features = ogr("-ro", "-q", "-al", f"OAPIF:{server}/", collection)
    assert features.count("OGRFeature(") == catalog_count(served_hub, collection)


def test_a_token_opens_what_the_consumers_grants_open_and_gdal_reads_it(server, served_hub, health_token):
    out = ogr("-ro", f"OAPIF:{server}/", token=health_token)
    layers = {line.split(": ", 1)[1].split(" (")[0] for line in out.splitlines() if line[:1].isdigit()}
    # its own department's dataset, the granted one, the public ones (and city layers it may read rows of)
    assert {"health.health_centres", "civil_affairs.elderly_care"} | PUBLIC <= layers
    summary = ogr("-ro", "-so", f"OAPIF:{server}/", "civil_affairs.elderly_care", token=health_token)
    assert f"Feature Count: {catalog_count(served_hub, 'civil_affairs.elderly_care')}" in summary


def test_items_page_with_next_links_until_every_feature_is_read(server, served_hub):
    url, seen = f"{server}/collections/water.pumping_stations/items?limit=5", []
    while url:
        status, headers, page = get(url)
        assert status == 200 and headers["Content-Type"].startswith("application/geo+json")
        seen += [f["id"] for f in page["features"]]
        url = next((link["href"] for link in page["links"] if link["rel"] == "next"), None)
    assert len(seen) == len(set(seen)) == catalog_count(served_hub, "water.pumping_stations")


def test_bbox_and_cql2_filters_select_the_same_rows_as_sql(server, served_hub):
    box = "121.40,31.15,121.50,31.25"
    status, _, page = get(f"{server}/collections/emergency.shelters/items?bbox={box}&limit=1000")
    expected = run_query(served_hub.lake, "SELECT facility_id FROM emergency.shelters WHERE "
                         "ST_Intersects(geometry, ST_MakeEnvelope(121.40, 31.15, 121.50, 31.25))").rows
    assert status == 200 and sorted(f["id"] for f in page["features"]) == sorted(r[0] for r in expected)
    cql = urllib.parse.quote("capacity > 1000 AND name LIKE 'Shelter%'")
    status, _, page = get(f"{server}/collections/emergency.shelters/items?filter={cql}&limit=1000")
    expected = run_query(served_hub.lake, "SELECT facility_id FROM emergency.shelters "
                         "WHERE capacity > 1000 AND name LIKE 'Shelter%'").rows
    assert status == 200 and sorted(f["id"] for f in page["features"]) == sorted(r[0] for r in expected)
    assert expected  # the filter selects something: the comparison means something


def test_the_hubs_crs_is_served_in_its_own_axis_order(server):
    crs = "http://www.opengis.net/def/crs/EPSG/0/4490"
    status, headers, page = get(f"{server}/collections/emergency.shelters/items?limit=3&crs={urllib.parse.quote(crs)}")
    _, _, plain = get(f"{server}/collections/emergency.shelters/items?limit=3")
    assert status == 200 and headers["Content-Crs"] == f"<{crs}>"
    for a, b in zip(page["features"], plain["features"]):
        lat, lon = a["geometry"]["coordinates"]
        assert (lon, lat) == pytest.approx(tuple(b["geometry"]["coordinates"]), abs=1e-6)  # EPSG:4490 is lat/lon


@pytest.mark.parametrize("path, status, code", [
    ("/collections/nope/items", 404, "NotFound"),
    ("/collections/emergency.shelters/items/NOPE-1", 404, "NotFound"),
    ("/collections/emergency.shelters/items?bbox=1,2,3", 400, "InvalidParameterValue"),
    ("/collections/emergency.shelters/items?filter=capacity%20%3E", 400, "InvalidParameterValue"),
    ("/collections/emergency.shelters/items?filter=secret_column%20%3D%201", 400, "InvalidParameterValue"),
    ("/collections/emergency.shelters/items?limit=0", 400, "InvalidParameterValue"),
    ("/collections/emergency.shelters/items?crs=EPSG:3857", 400, "InvalidParameterValue"),
    ("/collections/emergency.shelters/items?colour=red", 400, "InvalidParameterValue"),
    ("/collections/civil_affairs.elderly_care/items", 403, "Forbidden"),
    ("/collections/health.health_centres", 403, "Forbidden"),
])
def test_bad_requests_get_an_ogc_exception_naming_the_parameter(server, path, status, code):
    got, _, body = get(server + path)
    assert (got, body["code"]) == (status, code)
    if status == 403:  # nothing of the collection: not its title, columns or tier
        assert "elderly" not in json.dumps(body).lower() and "health" not in body["description"].lower()


def test_a_forged_or_url_borne_token_is_refused_and_never_logged(server, served_hub, health_token):
    status, headers, body = get(f"{server}/collections", token=health_token[:-2] + "xx")
    assert status == 401 and body["code"] == "InvalidToken" and "Bearer" in headers["WWW-Authenticate"]
    status, _, body = get(f"{server}/collections?token={health_token}")
    assert status == 401
    get(f"{server}/collections/water.pumping_stations/items?limit=1", token=health_token)
    audit = run_query(served_hub.lake, "SELECT statement, consumer FROM catalog.audit WHERE action LIKE 'api-%'").rows
    assert audit and not any(health_token in (s or "") for s, _ in audit)
    assert ("GET /collections/water.pumping_stations/items?limit=1", "health") in audit


def test_a_filter_cannot_reach_beyond_the_view(server):
    """SQL in a CQL2 string is a string; a property the reader may not see is unknown."""
    cql = urllib.parse.quote("name = 'x'') OR 1=1 --'")
    status, _, page = get(f"{server}/collections/emergency.shelters/items?filter={cql}")
    assert status == 200 and page["numberMatched"] == 0


def _tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    import math

    x = int((lon + 180) / 360 * 2**z)
    y = int((1 - math.log(math.tan(math.radians(lat)) + 1 / math.cos(math.radians(lat))) / math.pi) / 2 * 2**z)
    return x, y


def fetch(url: str, token: str | None = None, headers: dict | None = None):
    request = urllib.request.Request(url, headers={**({"Authorization": f"Bearer {token}"} if token else {}),
                                                   **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def test_gdal_reads_the_vector_tiles_of_a_collection_with_every_feature(server, served_hub, tmp_path):
    """A z8 tile over the city holds every shelter; GDAL's MVT driver decodes it with its attributes."""
    rows = run_query(served_hub.lake, "SELECT facility_id, ST_X(geometry), ST_Y(geometry) FROM emergency.shelters "
                                      "WHERE geometry IS NOT NULL").rows
    x, y = _tile_of(121.47, 31.23, 8)
    assert all(_tile_of(lon, lat, 8) == (x, y) for _, lon, lat in rows)  # the city fits one z8 tile
    status, headers, body = fetch(f"{server}/collections/emergency.shelters/tiles/WebMercatorQuad/8/{y}/{x}")
    assert status == 200 and headers["Content-Type"] == "application/vnd.mapbox-vector-tile"
    path = tmp_path / "tile.pbf"
    path.write_bytes(body)
    out = ogr("-ro", "-al", "-oo", f"X={x}", "-oo", f"Y={y}", "-oo", "Z=8", str(path))
    assert out.count("OGRFeature(") == len(rows)
    assert all(f"facility_id (String) = {fid}" in out for fid, _, _ in rows)
    again = fetch(f"{server}/collections/emergency.shelters/tiles/WebMercatorQuad/8/{y}/{x}",
                  headers={"If-None-Match": headers["ETag"]})
    assert again[0] == 304  # cached per version and view: the client's copy is current


def test_tiles_follow_the_readers_access(server, health_token):
    x, y = _tile_of(121.47, 31.23, 8)
    path = f"/collections/civil_affairs.elderly_care/tiles/WebMercatorQuad/8/{y}/{x}"
    assert fetch(server + path)[0] == 403
    status, _, body = fetch(server + path, token=health_token)
    assert status == 200 and len(body) > 0
    status, _, body = fetch(f"{server}/collections/emergency.shelters/tiles/WebMercatorQuad/8/0/0")
    assert status == 204 and body == b""  # a tile far from the city: empty
    assert fetch(f"{server}/collections/emergency.shelters/tiles/WebMercatorQuad/3/9/0")[0] == 400


def test_tilejson_describes_the_layer_and_its_fields(server):
    status, _, doc = get(f"{server}/collections/emergency.shelters/tiles/WebMercatorQuad/tilejson.json")
    assert status == 200 and doc["tilejson"] == "3.0.0"
    assert doc["tiles"][0].endswith("/collections/emergency.shelters/tiles/WebMercatorQuad/{z}/{y}/{x}")
    assert doc["vector_layers"][0]["fields"]["capacity"] == "integer"
    minx, miny, maxx, maxy = doc["bounds"]
    assert 121 < minx < maxx < 122 and 31 < miny < maxy < 32


def test_a_request_past_its_size_or_time_budget_is_refused(server, served_hub):
    status, _, body = get(f"{server}/collections/emergency.shelters/items?filter=" + "a" * 20_000)
    assert (status, body["code"]) == (413, "RequestTooLarge")
    from fastapi.testclient import TestClient

    from twinhub.serve.app import create_app

    slow = TestClient(create_app(served_hub, budget_s=0.0), raise_server_exceptions=False)
    response = slow.get("/collections/emergency.shelters/items")
    assert response.status_code == 503 and response.json()["code"] == "ServiceUnavailable"
    assert response.headers["Retry-After"] == "5"
    assert "shelter" not in response.text.lower()  # no data, no path in the error
