"""A worker's caches (twinhub/serve/cache.py, copies.py) never serve what the reader may no longer read:
a revoked token, a removed grant and a new catalog version apply on the very next request, and a
large table's in-memory indexed copy answers exactly as the lake does, for every reader."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess

import pytest
from fastapi.testclient import TestClient

from twinhub.catalog import tokens
from twinhub.catalog.grants import Consumer, Grant, delete_grant, save_grant
from twinhub.serve.app import create_app

from .conftest import one_shelter_fewer

pytestmark = pytest.mark.slow
TODAY = dt.date.today()


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def app(served_hub):
    app = create_app(served_hub)
    yield app
    app.state.served.close()


@pytest.fixture(scope="module")
def client(app):
    with TestClient(app) as client:  # one event loop and thread pool: the worker's cursors are reused
        yield client


def test_a_revoked_token_is_refused_on_the_very_next_request(served_hub, client):
    text, token = tokens.issue_token(served_hub.lake, Consumer("water"), TODAY + dt.timedelta(days=3), TODAY)
    for _ in range(2):  # the second answer comes from the worker's cached context
        assert client.get("/collections", headers=bearer(text)).status_code == 200
    tokens.revoke_token(served_hub.lake, token.id, "lost laptop")
    refused = client.get("/collections", headers=bearer(text))
    assert refused.status_code == 401 and refused.json()["code"] == "InvalidToken"
    assert client.get("/collections/emergency.shelters/items", headers=bearer(text)).status_code == 401


def test_a_grant_removed_closes_the_collection_on_the_next_request(served_hub, client):
    save_grant(served_hub.lake, Grant("emergency", "civil_affairs.elderly_care", "internal",
                                      TODAY + dt.timedelta(days=3), "steward", TODAY.isoformat()))
    text, _ = tokens.issue_token(served_hub.lake, Consumer("emergency"), TODAY + dt.timedelta(days=3), TODAY)
    path = "/collections/civil_affairs.elderly_care/items"
    opened = [client.get(path, headers=bearer(text)) for _ in range(2)]
    assert [r.status_code for r in opened] == [200, 200] and opened[1].json()["numberMatched"] > 0
    delete_grant(served_hub.lake, "emergency", "civil_affairs.elderly_care")
    closed = client.get(path, headers=bearer(text))
    assert closed.status_code == 403 and "elderly" not in closed.text.lower()


def test_a_new_catalog_version_is_served_on_the_next_request(served_hub, client):
    before = client.get("/collections/emergency.shelters/items").json()["numberMatched"]
    first = one_shelter_fewer(served_hub)
    after = client.get("/collections/emergency.shelters/items").json()
    assert after["numberMatched"] == before - 1
    assert first not in {f["properties"]["facility_id"] for f in after["features"]}


def decoded(tile: bytes, path) -> list[str]:
    """The features of MVT tile 9/209/428 as GDAL's MVT driver decodes them, sorted (their order in the
    tile is the order rows were read: the copy keeps its rows in Hilbert order)."""
    path.write_bytes(tile)
    out = subprocess.run([shutil.which("ogrinfo") or "ogrinfo", "-ro", "-al", "-oo", "X=428", "-oo", "Y=209",
                          "-oo", "Z=9", str(path)], capture_output=True, text=True, check=True, timeout=120).stdout
    features = [f.split("\n", 1)[1] for f in out.split("OGRFeature(")[1:]]  # without the feature number
    assert features
    return sorted(features)


READS = [  # (reader, path): a public dataset, a granted internal one, a city layer's row filter
    (None, "/collections/emergency.shelters/items?bbox=121.0,30.7,122.0,31.9&limit=50"),
    ("health", "/collections/civil_affairs.elderly_care/items?bbox=121.0,30.7,122.0,31.9"),
    ("health", "/collections/city.facility/items?bbox=121.0,30.7,122.0,31.9&filter=capacity > 10"),
    ("health", "/collections/city.facility/items?limit=3&offset=1"),
]


@pytest.fixture(scope="module")
def layer_grant(served_hub):
    """health may read the city's facility layer: its rows only from the inputs health may read."""
    save_grant(served_hub.lake, Grant("health", "city.facility", "internal", TODAY + dt.timedelta(days=3),
                                      "steward", TODAY.isoformat()))


@pytest.mark.parametrize("reader, path", READS)
def test_the_indexed_copy_answers_as_the_lake(served_hub, health_token, layer_grant, reader, path, tmp_path):
    headers = bearer(health_token) if reader else {}
    lake = create_app(served_hub)
    copied = create_app(served_hub)
    copied.state.served.copies.min_rows = 1  # every table is "large": copied and read from the copy
    try:
        with TestClient(lake) as a, TestClient(copied) as b:
            expected = a.get(path, headers=headers)
            assert expected.status_code == 200 and expected.json()["numberReturned"] > 0, expected.text[:300]
            b.get(path, headers=headers)  # starts the copy
            copied.state.served.copies.wait()
            assert copied.state.served.copies._ready, "no copy was made"
            got = b.get(path, headers=headers)
            assert got.status_code == 200
            strip = lambda doc: {k: v for k, v in doc.items() if k != "timeStamp"}  # noqa: E731
            assert strip(got.json()) == strip(expected.json())
            tile = "/collections/" + path.split("/")[2] + "/tiles/WebMercatorQuad/9/209/428"
            drawn = a.get(tile, headers=headers)
            assert drawn.status_code == 200
            assert decoded(drawn.content, tmp_path / "lake.pbf") == decoded(b.get(tile, headers=headers).content,
                                                                          tmp_path / "copy.pbf")
    finally:
        lake.state.served.close()
        copied.state.served.close()
