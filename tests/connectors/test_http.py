"""HTTP sources against a real server on 127.0.0.1 (tests/connectors/conftest.py) serving real data.

127.0.0.1 is a loopback address, so every test that reads from the server allows it
explicitly in the policy, as a hub would allow an internal host in twinhub.yaml.
"""

from __future__ import annotations

import time
import uuid

import numpy as np
import pandas as pd
import pyproj
import pytest
import shapely

from twinhub.connectors import ConfigProblem, NetworkPolicy, SourceError, open_source
from twinhub.standards.crs import resolve_crs, transform_geometries

LOCAL = NetworkPolicy(allow_hosts=("127.0.0.1",))
FAST = {"timeout": 1, "retries": 2, "backoff": 0.01}  # keeps the failure cases quick
GEOD = pyproj.Geod(ellps="WGS84")


def read(spec: dict, rows: int = 25, policy: NetworkPolicy = LOCAL) -> tuple:
    connector = open_source(spec, policy=policy)
    chunks = list(connector.chunks(rows))
    frame = np.concatenate([c.frame.to_dict("records") for c in chunks])
    geometry = np.concatenate([c.geometry for c in chunks])
    rows_ = np.concatenate([c.source_rows for c in chunks])
    return connector, chunks, frame, geometry, rows_


def key() -> str:
    return uuid.uuid4().hex[:8]


# --------------------------------------------------------------------------- every kind reads every row

# (id, spec from the base URL, rows, CRS the source declares)
SOURCES = [
    ("http-geojson-bath-grit-bins", lambda s: {"format": "http", "url": f"{s}/files/grit.geojson", "data_format": "geojson"}, "grit", "EPSG:4326"),
    ("http-csv-adur-toilets", lambda s: {"format": "http", "url": f"{s}/files/toilets.csv", "data_format": "csv", "x": "GeoX", "y": "GeoY"}, "toilets", None),
    ("ogcapi-pages-of-10", lambda s: {"format": "ogcapi", "url": f"{s}/ogc/collections/grit/items", "limit": 10}, "grit", "EPSG:4326"),
    ("ogcapi-one-page", lambda s: {"format": "ogcapi", "url": f"{s}/ogc/collections/grit/items", "limit": 1000}, "grit", "EPSG:4326"),
    ("arcgis-geojson-server-page-size", lambda s: {"format": "arcgis", "url": f"{s}/arcgis/grit/FeatureServer/0"}, "grit", "EPSG:4326"),
    ("arcgis-geojson-page-size-17", lambda s: {"format": "arcgis", "url": f"{s}/arcgis/grit/FeatureServer/0", "page_size": 17}, "grit", "EPSG:4326"),
    ("arcgis-esri-json-wgs84", lambda s: {"format": "arcgis", "url": f"{s}/arcgis/grit/FeatureServer/0", "data_format": "json"}, "grit", "EPSG:4326"),
    ("arcgis-esri-json-bng", lambda s: {"format": "arcgis", "url": f"{s}/arcgis/toilets/FeatureServer/0/", "data_format": "json", "page_size": 4}, "toilets", "EPSG:27700"),
]


@pytest.mark.parametrize(("make", "data", "crs"), [pytest.param(*c[1:], id=c[0]) for c in SOURCES])
def test_every_feature_is_read_once_in_order(server, loopback_only, make, data, crs):
    count = server.count(data)
    connector, chunks, frame, geometry, rows = read(make(server.url))
    assert len(frame) == count and rows.tolist() == list(range(1, count + 1))
    assert max(len(c.frame) for c in chunks) <= 25
    assert all(g is not None for g in geometry)
    declared = connector.crs()
    assert (resolve_crs(declared).name if declared else None) == crs
    assert all(a[0] == "127.0.0.1" for a in loopback_only)


@pytest.mark.parametrize("make", [pytest.param(c[1], id=c[0]) for c in SOURCES if c[2] == "grit"])
def test_bath_grit_bins_arrive_as_in_the_file(server, make):
    """Every kind serving the grit bins gives the file's features: same ids, same places, same order."""
    _, _, frame, geometry, _ = read(make(server.url))
    expected = server.grit
    missing = lambda v: None if pd.isna(v) else v  # noqa: E731 (GDAL reads a missing id as NaN)
    assert [missing(r["feature_id"]) for r in frame] == [f["properties"]["feature_id"] for f in expected]
    want = shapely.points([f["geometry"]["coordinates"] for f in expected])
    assert shapely.distance(geometry, want).max() < 1e-12


@pytest.mark.parametrize(
    ("make", "crs"),
    [
        pytest.param(lambda s: {"format": "http", "url": f"{s}/files/toilets.csv", "data_format": "csv", "x": "GeoX", "y": "GeoY"}, "EPSG:27700", id="http-csv"),
        pytest.param(lambda s: {"format": "arcgis", "url": f"{s}/arcgis/toilets/FeatureServer/0", "data_format": "json"}, None, id="arcgis-esri-json"),
    ],
)
def test_adur_beach_green_toilets_land_in_lancing(server, make, crs):
    connector, _, frame, geometry, _ = read(make(server.url))
    crs = crs or connector.crs()
    (row,) = [i for i, r in enumerate(frame) if r["LocationText"] == "BEACH GREEN PUBLIC CONVENIENCES BRIGHTON ROAD LANCING"]
    point = transform_geometries(geometry[[row]], crs, "EPSG:4326")[0]
    assert GEOD.inv(point.x, point.y, -0.32, 50.83)[2] < 2_000


def test_ogcapi_bbox_filters_on_the_server_and_every_feature_is_inside(server):
    bbox = [-2.40, 51.35, -2.30, 51.42]  # central Bath
    _, _, frame, geometry, _ = read({"format": "ogcapi", "url": f"{server.url}/ogc/collections/grit/items", "limit": 7, "bbox": bbox})
    inside = [f for f in server.grit if bbox[0] <= f["geometry"]["coordinates"][0] <= bbox[2] and bbox[1] <= f["geometry"]["coordinates"][1] <= bbox[3]]
    assert 0 < len(frame) == len(inside) < len(server.grit)
    assert shapely.contains_xy(shapely.box(*bbox), shapely.get_x(geometry), shapely.get_y(geometry)).all()


def test_paged_fingerprint_ignores_page_timestamps_and_covers_the_features(server):
    spec = {"format": "ogcapi", "url": f"{server.url}/ogc/collections/grit/items", "limit": 50}
    first = open_source(spec, policy=LOCAL).fingerprint()
    assert open_source(spec, policy=LOCAL).fingerprint() == first  # the pages' timeStamp differs each time
    narrower = open_source(dict(spec, bbox=[-2.40, 51.35, -2.30, 51.42]), policy=LOCAL).fingerprint()
    assert narrower != first


def test_http_file_fingerprint_is_the_hash_of_what_chunks_read(server):
    import hashlib

    connector = open_source({"format": "http", "url": f"{server.url}/files/grit.geojson", "data_format": "geojson"}, policy=LOCAL)
    assert connector.fingerprint() == "sha256:" + hashlib.sha256(server.grit_path.read_bytes()).hexdigest()


def test_credentials_come_from_the_environment_and_reach_only_the_source(server, monkeypatch):
    spec = {"format": "http", "url": f"{server.url}/auth/toilets.csv", "data_format": "csv",
            "headers_env": {"Authorization": "TOILETS_AUTH"}, **FAST}
    monkeypatch.setenv("TOILETS_AUTH", f"Bearer {server.token}")
    assert sum(len(c.frame) for c in open_source(spec, policy=LOCAL).chunks()) == server.toilets
    monkeypatch.setenv("TOILETS_AUTH", "Bearer wrong-t0ken-value")
    with pytest.raises(SourceError) as info:
        open_source(spec, policy=LOCAL).check()
    assert "HTTP 401" in str(info.value) and "headers_env" in str(info.value)
    assert "wrong-t0ken-value" not in str(info.value)
    monkeypatch.delenv("TOILETS_AUTH")
    with pytest.raises(SourceError, match="TOILETS_AUTH.*source.headers_env.Authorization.*not set"):
        open_source(spec, policy=LOCAL).check()


# --------------------------------------------------------------------------- failures: retried, or clear errors

def test_503_twice_then_200_is_retried_and_read(server):
    spec = {"format": "http", "url": f"{server.url}/flaky/2/{key()}/grit.geojson", "data_format": "geojson", **FAST}
    assert sum(len(c.frame) for c in open_source(spec, policy=LOCAL).chunks()) == len(server.grit)


def test_a_body_cut_off_halfway_is_retried_not_parsed(server):
    spec = {"format": "http", "url": f"{server.url}/cut/1/{key()}/grit.geojson", "data_format": "geojson", **FAST}
    assert sum(len(c.frame) for c in open_source(spec, policy=LOCAL).chunks()) == len(server.grit)


def test_json_cut_off_without_a_length_is_retried_not_parsed(server):
    spec = {"format": "ogcapi", "url": f"{server.url}/cut-json/1/{key()}/items", **FAST}
    assert sum(len(c.frame) for c in open_source(spec, policy=LOCAL).chunks()) == 20


# (id, spec from the base URL, texts the error must contain)
FAILURES = [
    ("503-more-often-than-retries", lambda s: {"format": "http", "url": f"{s}/flaky/9/{key()}/grit.geojson", "data_format": "geojson", **FAST},
     ["HTTP 503", "/flaky/", "gave up after 3 attempts", "try again later"]),
    ("cut-off-every-time", lambda s: {"format": "http", "url": f"{s}/cut/9/{key()}/grit.geojson", "data_format": "geojson", **FAST},
     ["was cut off after", "bytes", "gave up after 3 attempts"]),
    ("json-cut-off-every-time", lambda s: {"format": "ogcapi", "url": f"{s}/cut-json/9/{key()}/items", **FAST},
     ["not complete JSON", "gave up after 3 attempts"]),
    ("404", lambda s: {"format": "http", "url": f"{s}/status/404?f=csv", "data_format": "csv", **FAST},
     ["HTTP 404", "/status/404?f=…", "check source.url"]),
    ("403", lambda s: {"format": "ogcapi", "url": f"{s}/status/403", **FAST}, ["HTTP 403", "credentials"]),
    ("timeout", lambda s: {"format": "http", "url": f"{s}/slow", "data_format": "geojson", "timeout": 0.3, "retries": 1, "backoff": 0.01},
     ["did not answer within 0.3 s", "source.timeout", "gave up after 2 attempts"]),
    ("nothing-listening", lambda s: {"format": "http", "url": "http://127.0.0.1:9/x.csv", "data_format": "csv", **FAST},
     ["cannot connect to http://127.0.0.1:9/x.csv", "gave up after 3 attempts"]),
    ("arcgis-geojson-of-a-projected-layer", lambda s: {"format": "arcgis", "url": f"{s}/arcgis/toilets/FeatureServer/0", **FAST},
     ["ArcGIS error 400", "GeoJSON needs the layer in WGS 84", "source.url"]),
    ("arcgis-error-in-a-200", lambda s: {"format": "arcgis", "url": f"{s}/arcgis-error/FeatureServer/0", **FAST},
     ["ArcGIS error 498", "Invalid token", "params_env"]),
    ("ogcapi-url-not-items", lambda s: {"format": "ogcapi", "url": f"{s}/arcgis/grit/FeatureServer/0/query?returnCountOnly=true", **FAST},
     ["not a GeoJSON FeatureCollection", "items URL"]),
]


@pytest.mark.parametrize(("make", "says"), [pytest.param(*c[1:], id=c[0]) for c in FAILURES])
def test_failure_gives_a_clear_error_and_no_rows(server, make, says):
    connector = open_source(make(server.url), policy=LOCAL)
    started = time.monotonic()
    with pytest.raises(SourceError) as info:
        list(connector.chunks())
    for text in says:
        assert text in str(info.value)
    assert time.monotonic() - started < 5  # bounded: retries and timeouts do not hang a run


def test_https_checks_the_certificate_of_the_host_it_connects_to(tls_server, monkeypatch):
    """Connecting to the checked address keeps TLS verifying the URL's host: an untrusted
    certificate is refused at once (not retried); trusted, the same server is read."""
    url, cert = tls_server
    spec = {"format": "http", "url": f"{url}/files/grit.geojson", "data_format": "geojson", **FAST}
    with pytest.raises(SourceError) as info:
        open_source(spec, policy=LOCAL).check()
    assert "TLS failed for https://127.0.0.1" in str(info.value) and "certificate" in str(info.value)
    assert "gave up" not in str(info.value)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # OpenSSL's default trust store, as a city's CA would be
    assert open_source(spec, policy=LOCAL).columns()[:2] == ["feature_no", "feature_lo"]


# --------------------------------------------------------------------------- the network policy

# (id, URL, policy, refused because...) -- IP literals only: nothing is resolved through DNS
REFUSED = [
    ("loopback", "http://127.0.0.1/", NetworkPolicy(), "127.0.0.1 is a loopback address"),
    ("loopback-range", "http://127.8.9.10:8080/x", NetworkPolicy(), "loopback"),
    ("loopback-v6", "http://[::1]/", NetworkPolicy(), "::1 is a loopback address"),
    ("loopback-v4-mapped-v6", "http://[::ffff:127.0.0.1]/", NetworkPolicy(), "loopback"),
    ("loopback-decimal", "http://2130706433/", NetworkPolicy(), "resolves to 127.0.0.1, a loopback address"),
    ("unspecified", "http://0.0.0.0:3000/", NetworkPolicy(), "loopback"),
    ("metadata-service", "http://169.254.169.254/latest/meta-data/", NetworkPolicy(), "169.254.169.254 is a link-local address"),
    ("link-local-v6", "http://[fe80::1]/", NetworkPolicy(), "link-local"),
    ("private-10", "http://10.0.0.1/data.csv", NetworkPolicy(), "10.0.0.1 is a private address"),
    ("private-172", "http://172.16.5.4/", NetworkPolicy(), "private"),
    ("private-192", "https://192.168.1.1/", NetworkPolicy(), "private"),
    ("private-v6", "http://[fd12:3456::1]/", NetworkPolicy(), "private"),
    ("carrier-nat", "http://100.64.0.1/", NetworkPolicy(), "reserved"),
    ("file", "file:///etc/passwd", NetworkPolicy(), "only http and https"),
    ("ftp", "ftp://8.8.8.8/x", NetworkPolicy(), "only http and https"),
    ("credentials-in-url", "http://user:pw@8.8.8.8/", NetworkPolicy(), "user name or password"),
    ("allow-private-is-not-loopback", "http://127.0.0.1/", NetworkPolicy(allow_private=True), "loopback"),
    ("allow-private-is-not-metadata", "http://169.254.169.254/", NetworkPolicy(allow_private=True), "link-local"),
    ("allowed-cidr-is-not-others", "http://10.0.0.1/", NetworkPolicy(allow_hosts=("10.20.0.0/16",)), "private"),
]


@pytest.mark.parametrize(("url", "policy", "why"), [pytest.param(*c[1:], id=c[0]) for c in REFUSED])
def test_policy_refuses_before_connecting(loopback_only, url, policy, why):
    with pytest.raises(SourceError) as info:
        policy.check(url)
    assert why in str(info.value) and "refused" in str(info.value)
    assert "user:pw" not in str(info.value)
    assert loopback_only == []


# (id, URL, policy) -- allowed: checked, never fetched
ALLOWED = [
    ("public", "https://8.8.8.8/data.geojson", NetworkPolicy()),
    ("listed-ip", "http://127.0.0.1:8000/", NetworkPolicy(allow_hosts=("127.0.0.1",))),
    ("listed-cidr", "http://10.20.3.4/", NetworkPolicy(allow_hosts=("10.20.0.0/16",))),
    ("allow-private", "http://192.168.1.1/", NetworkPolicy(allow_private=True)),
    ("listed-v6", "http://[fd12:3456::1]/", NetworkPolicy(allow_hosts=("fd12:3456::/32",))),
]


@pytest.mark.parametrize(("url", "policy"), [pytest.param(*c[1:], id=c[0]) for c in ALLOWED])
def test_policy_allows_public_and_listed_addresses(loopback_only, url, policy):
    target = policy.check(url)
    assert target.ip in url and loopback_only == []


@pytest.mark.parametrize(
    "to",
    [
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "http://10.0.0.1/internal.csv",
        "http://[::1]:22/",
        "file:///etc/passwd",
        "http://127.0.0.2:8080/x",  # loopback, but not the allowed 127.0.0.1
    ],
)
def test_a_redirect_to_a_refused_address_is_not_followed(server, loopback_only, to):
    spec = {"format": "http", "url": f"{server.url}/redirect?to={to}", "data_format": "csv", **FAST}
    with pytest.raises(SourceError) as info:
        open_source(spec, policy=LOCAL).check()
    assert "refused" in str(info.value) and "gave up" not in str(info.value)  # refused, never retried
    assert {a[0] for a in loopback_only} == {"127.0.0.1"}  # only the test server was contacted


def test_a_redirect_to_an_allowed_address_is_followed(server):
    spec = {"format": "http", "url": f"{server.url}/redirect?to=/files/grit.geojson", "data_format": "geojson"}
    assert sum(len(c.frame) for c in open_source(spec, policy=LOCAL).chunks()) == len(server.grit)


def test_the_default_policy_refuses_the_local_server(server, loopback_only):
    spec = {"format": "http", "url": f"{server.url}/files/grit.geojson", "data_format": "geojson"}
    with pytest.raises(SourceError, match="loopback address.*http.allow_hosts in twinhub.yaml"):
        open_source(spec).check()
    assert loopback_only == []


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        ({"allow_hosts": "127.0.0.1"}, "http.allow_hosts"),
        ({"allow_private": "yes"}, "http.allow_private"),
        ({"allow_host": ["x"]}, "http.allow_host: unknown key"),
        (["127.0.0.1"], "expected a mapping"),
    ],
)
def test_policy_configuration_errors_name_the_key(config, problem):
    with pytest.raises(ValueError, match=problem):
        NetworkPolicy.from_config(config)


# --------------------------------------------------------------------------- configuration keys

# (id, spec, key, text)
BAD_CONFIG = [
    ("file-url", {"format": "http", "url": "file:///etc/passwd", "data_format": "csv"}, "source.url", "http:// or https://"),
    ("token-in-url", {"format": "arcgis", "url": "https://gis.example.org/FeatureServer/0?token=abc123"}, "source.url", "params_env"),
    ("password-in-url", {"format": "ogcapi", "url": "https://u:p@gis.example.org/items"}, "source.url", "user name or password"),
    ("header-value-not-a-variable-name", {"format": "http", "url": "https://x.example/a.csv", "data_format": "csv",
                                          "headers_env": {"Authorization": "Bearer abc"}}, "source.headers_env", "not the name of an environment variable"),
    ("x-for-geojson", {"format": "http", "url": "https://x.example/a.json", "data_format": "geojson", "x": "lon", "y": "lat"}, "source.x", "data_format: csv"),
    ("unknown-data-format", {"format": "http", "url": "https://x.example/a.xml", "data_format": "gml"}, "source.data_format", "'geojson' or 'csv'"),
    ("bbox-three-numbers", {"format": "ogcapi", "url": "https://x.example/items", "bbox": [1, 2, 3]}, "source.bbox", "min lon"),
    ("arcgis-format", {"format": "arcgis", "url": "https://x.example/FeatureServer/0", "data_format": "kml"}, "source.data_format", "'geojson' or 'json'"),
    ("negative-timeout", {"format": "ogcapi", "url": "https://x.example/items", "timeout": -1}, "source.timeout", "greater than 0"),
]


@pytest.mark.parametrize(("spec", "key_", "text"), [pytest.param(*c[1:], id=c[0]) for c in BAD_CONFIG])
def test_bad_http_config_names_the_key(spec, key_, text):
    with pytest.raises(ConfigProblem) as info:
        open_source(spec)
    assert key_ in info.value.problems and text in info.value.problems[key_], info.value.problems
    assert "abc123" not in str(info.value)


def test_query_values_never_appear_in_messages(server, monkeypatch):
    """A token passed with params_env reaches the server but not the error message."""
    monkeypatch.setenv("ARCGIS_TOKEN", "tok-9f8e7d6c")
    spec = {"format": "arcgis", "url": f"{server.url}/status/404", "params_env": {"token": "ARCGIS_TOKEN"}, **FAST}
    with pytest.raises(SourceError) as info:
        open_source(spec, policy=LOCAL).check()
    assert "token=…" in str(info.value) and "tok-9f8e7d6c" not in str(info.value)


# --------------------------------------------------------------------------- through the hub: the policy comes from twinhub.yaml


@pytest.mark.slow
def test_the_hub_passes_its_policy_to_registration_and_runs(hub, server, tmp_path):
    """An OGC API source on 127.0.0.1: refused at registration until twinhub.yaml allows the host;
    then read in full, and an unchanged collection is not republished."""
    import yaml

    from twinhub.hub.home import Hub
    from twinhub.hub.ingest import ingest
    from twinhub.hub.manifest import ManifestError
    from twinhub.hub.registration import register
    from twinhub.hub.registry import lookup

    manifest = tmp_path / "grit.yaml"
    manifest.write_text(yaml.safe_dump({
        "department": "highways", "dataset": "grit_bins", "title": "Grit bins", "standard": "facility",
        "source": {"format": "ogcapi", "url": f"{server.url}/ogc/collections/grit/items", "limit": 100},
        "fields": {"facility_id": "feature_id", "name": "feature_lo", "category": "feature_ty"},
    }), encoding="utf-8")
    with pytest.raises(ManifestError, match="127.0.0.1 is a loopback address.*http.allow_hosts"):
        register(hub, manifest)

    config = hub.home / "twinhub.yaml"
    config.write_text(config.read_text(encoding="utf-8").replace("\nhttp:\n", "\nhttp: {allow_hosts: [127.0.0.1]}\n"), encoding="utf-8")
    hub = Hub.open(hub.home)
    assert hub.network_policy.allow_hosts == ("127.0.0.1",)
    register(hub, manifest)
    registered_text = (hub.registry_dir / "highways" / "grit_bins.yaml").read_text(encoding="utf-8")
    assert "path:" not in registered_text  # a URL source is stored as written

    first = ingest(hub, lookup(hub, "highways.grit_bins"), run_id="run-1")
    assert first.rows_read == len(server.grit) == first.rows_published + first.rows_quarantined
    again = ingest(hub, lookup(hub, "highways.grit_bins"), run_id="run-2")
    assert again.unchanged
