"""Finding 13 (exhaustion): each source cap is a quick refusal naming its twinhub.yaml key.

A 10 MB CSV of 1,000,000 columns took 115 s and 4.3 GB at ``register``; HTTP downloads had no size
cap; gzip bodies were inflated without a ratio check. Now ``limits.max_columns`` is checked on the
header's bytes before any parser, ``limits.max_download_mb`` on the length announced and the bytes
received, ``limits.max_inflate_ratio`` while a compressed body is inflated, a block at a time.
"""

from __future__ import annotations

import gzip
import time
import tracemalloc

import pytest

from twinhub.hub.manifest import ManifestError
from twinhub.hub.registration import register
from twinhub.hub.registry import registered

from .source_support import SHELTERS, LoopbackServer, Reply, hub_with, write_manifest

COLUMNS = 200_000  # the attack had 1,000,000; 200,000 keeps the test fast and the old code's cost visible
MB = 1 << 20


def test_a_csv_with_200k_columns_is_refused_at_register_quickly_and_in_little_memory(tmp_path):
    folder = tmp_path / "emergency"
    folder.mkdir()
    wide = folder / "wide.csv"
    with wide.open("w", encoding="utf-8") as fh:
        fh.write(",".join(f"c{i}" for i in range(COLUMNS)) + "\n")
        fh.write(",".join("1" for _ in range(COLUMNS)) + "\n")
    hub = hub_with(tmp_path / "home")
    manifest = write_manifest(folder, "wide", {"format": "csv", "path": "wide.csv", "x": "c1", "y": "c2", "crs": "EPSG:4326"},
                              fields={"facility_id": "c0", "name": "c3", "category": "c4"})
    tracemalloc.start()
    started = time.monotonic()
    try:
        with pytest.raises(ManifestError) as info:
            register(hub, manifest)
        elapsed = time.monotonic() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    problem = info.value.problems.get("source", "")
    assert "columns; the hub reads at most 10,000 (limits.max_columns in twinhub.yaml)" in problem, info.value.problems
    assert elapsed < 10 and peak < 64 * MB, (elapsed, peak)
    assert registered(hub) == []


def test_the_column_cap_is_the_stewards_to_raise(tmp_path):
    folder = tmp_path / "emergency"
    folder.mkdir()
    (folder / "shelters.csv").write_text("shelter_id,name,type,lon,lat\nS1,Square,shelter,121.47,31.23\n", encoding="utf-8")
    manifest = write_manifest(folder, "narrow", {"format": "csv", "path": "shelters.csv", "x": "lon", "y": "lat", "crs": "EPSG:4326"})
    with pytest.raises(ManifestError, match=r"has at least 5 columns; the hub reads at most 4 \(limits.max_columns"):
        register(hub_with(tmp_path / "home", limits={"max_columns": 4}), manifest)
    register(hub_with(tmp_path / "home2", limits={"max_columns": 5}), manifest)


def http_geojson(url: str) -> dict:
    return {"format": "http", "url": url, "data_format": "geojson", "retries": 0}


# (id, the server's reply, what the refusal says)
DOWNLOADS = [
    ("announced-length", Reply(body=b" " * (3 * MB) + SHELTERS.read_bytes()), "announces 3,"),
    ("no-length-sent", Reply(body=b" " * (3 * MB) + SHELTERS.read_bytes(), headers={"Content-Length": None}),
     "sent more than 1,048,576 bytes"),
]


@pytest.mark.parametrize(("reply", "says"), [pytest.param(*c[1:], id=c[0]) for c in DOWNLOADS])
def test_a_download_over_the_cap_is_refused(tmp_path, reply, says):
    hub = hub_with(tmp_path / "home", http={"allow_hosts": ["127.0.0.1"]}, limits={"max_download_mb": 1})
    with LoopbackServer({"/big.geojson": reply}) as server:
        with pytest.raises(ManifestError) as info:
            register(hub, write_manifest(tmp_path / "m", "big", http_geojson(f"{server.url}/big.geojson")))
    problem = info.value.problems.get("source", "")
    assert says in problem and "limits.max_download_mb in twinhub.yaml" in problem, info.value.problems


def test_a_gzip_bomb_is_refused_while_it_inflates(tmp_path):
    """100 MB of zeros in ~100 KB of gzip: refused after a few blocks, never written out or held."""
    bomb = gzip.compress(b"\0" * (100 * MB), compresslevel=9)
    hub = hub_with(tmp_path / "home", http={"allow_hosts": ["127.0.0.1"]})
    with LoopbackServer({"/bomb.geojson": Reply(body=bomb, headers={"Content-Encoding": "gzip"})}) as server:
        tracemalloc.start()
        try:
            with pytest.raises(ManifestError) as info:
                register(hub, write_manifest(tmp_path / "m", "bomb", http_geojson(f"{server.url}/bomb.geojson")))
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert len(server.requests) == 1  # not retried
    problem = info.value.problems.get("source", "")
    assert "expands more than 100 times" in problem and "limits.max_inflate_ratio in twinhub.yaml" in problem, problem
    assert peak < 48 * MB, peak


def test_a_compressed_body_of_ordinary_ratio_is_read(tmp_path):
    hub = hub_with(tmp_path / "home", http={"allow_hosts": ["127.0.0.1"]})
    body = gzip.compress(SHELTERS.read_bytes())
    with LoopbackServer({"/shelters.geojson": Reply(body=body, headers={"Content-Encoding": "gzip"})}) as server:
        register(hub, write_manifest(tmp_path / "m", "shelters", http_geojson(f"{server.url}/shelters.geojson")))
    assert [r.id for r in registered(hub)] == ["emergency.shelters"]
