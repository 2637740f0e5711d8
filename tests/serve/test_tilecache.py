"""Tiles shared by the workers (twinhub/serve/tilecache.py): a tile one worker made is served by another
from the hub's disk cache, written for the hub's account only; a new catalog version leaves the old tiles
behind and removes them; a worker writes no more than its cap per version."""

from __future__ import annotations

import pathlib
import stat

import pytest
from fastapi.testclient import TestClient

from twinhub.serve.app import create_app
from twinhub.serve.tilecache import TileCache

from .conftest import one_shelter_fewer

pytestmark = pytest.mark.slow
TILE = "/collections/emergency.shelters/tiles/WebMercatorQuad/8/104/214"  # Shanghai at z8 (row 104, column 214)


def _worker(hub):
    app = create_app(hub)
    return app, TestClient(app)


def _tiles(hub) -> list[pathlib.Path]:
    return sorted(p for p in (hub.home / "cache" / "tiles").rglob("*") if p.is_file())


def test_a_tile_made_by_one_worker_is_served_by_another_from_disk(served_hub):
    first, first_client = _worker(served_hub)
    second, second_client = _worker(served_hub)  # another worker: nothing in its memory
    try:
        made = first_client.get(TILE)
        assert made.status_code == 200 and made.content
        (path,) = [p for p in _tiles(served_hub) if p.name == made.headers["etag"].strip('"')]
        assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        path.write_bytes(b"from disk")  # what the second worker answers proves where it read the tile
        again = second_client.get(TILE)
        assert again.content == b"from disk" and again.headers["etag"] == made.headers["etag"]
    finally:
        for app in (first, second):
            app.state.served.close()


def test_a_new_catalog_version_removes_the_older_tiles(served_hub):
    app, client = _worker(served_hub)
    try:
        old = client.get(TILE)
        old_folder = {p.parts[-3] for p in _tiles(served_hub)}
        one_shelter_fewer(served_hub)
        new = client.get(TILE)
        assert new.headers["etag"] != old.headers["etag"]
        folders = {p.parts[-3] for p in _tiles(served_hub)}
        assert len(folders) == 1 and folders.isdisjoint(old_folder)  # only the new version's tiles remain
    finally:
        app.state.served.close()


def test_a_worker_writes_no_more_than_its_cap(tmp_path):
    cache = TileCache(tmp_path, disk_max_bytes=10)
    cache.put("a" * 32, b"123456", snapshot=7)
    cache.put("b" * 32, b"123456", snapshot=7)  # past the cap: kept in memory only
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == ["a" * 32]
    assert cache.get("b" * 32, 7) == b"123456"
    fresh = TileCache(tmp_path)
    assert fresh.get("a" * 32, 7) == b"123456" and fresh.get("b" * 32, 7) is None
