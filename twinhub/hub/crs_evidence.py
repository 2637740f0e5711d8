"""Which CRS are these coordinates in? Evidence from what the hub already publishes.

Chinese POI files often declare no CRS, and in a Chinese city WGS 84, GCJ-02 (WGS 84
plus a 300-600 m offset) and BD-09 all put the points inside the city: the range alone
(standards/crs_detect.py) ties them. The hub can do better with what it already has:

* **names**: rows whose name is that of a feature already published (a bus stop, a
  school): under the right CRS they sit metres from it, under the wrong one about one
  offset away (median distance of the name pairs, per candidate);
* **districts**: the file's own district column against the published district
  polygons (an ``admin_area`` dataset, or any published polygons named like the
  districts): the share of points inside the polygon of their own district;
* **landmarks**: rows named like one of the city pack's ``landmarks:`` (city.yaml,
  WGS 84 positions): the median distance to them.

Each kind of evidence that separates the candidates clearly *decides* for one; the
ranking, its numbers and which evidence decided are shown to a person, never applied
(:func:`rank_with_evidence`, ``twinhub crs evidence``, the run's hint when a source
declares no CRS). :func:`offset_findings` asks the same question at publish time: do a
dataset's points sit one GCJ-02 (or BD-09) offset away from published features of
its standard?

Everything is sampled (:data:`SAMPLE` points) and vectorized: one query per published
dataset (filtered to the names wanted), numpy and shapely's STRtree for the rest.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import shapely
from numpy.typing import ArrayLike, NDArray
from sqlglot import exp

from twinhub.catalog.lake import META_SCHEMA
from twinhub.catalog.notes import column_facts
from twinhub.catalog.query import locked_connection
from twinhub.hub.home import Hub
from twinhub.standards.crs import resolve_crs, transform_xy
from twinhub.standards.crs_detect import (
    TIE,
    CRSCandidate,
    Landmark,
    candidates_message,
    first_located_chunk,
    load_landmarks,
    metres_apart,
    positions,
    rank_crs,
)

SAMPLE = 2_000  # positions of the file looked at
MAX_SAME_NAME = 5  # a name published more often than this ("公共厕所") says nothing about a position
MIN_PAIRS = {"landmarks": 1, "names": 3, "districts": 20}
CLEAR_M = 100.0  # distances: the best candidate is at least this much nearer than the next ...
CLEAR_RATIO = 0.5  # ... and at most half as far
CLEAR_SHARE = 0.01  # shares: the best candidate puts at least this larger a share inside ...
CLEAR_POINTS = 3  # ... and at least this many more points
STRENGTH = ("landmarks", "names", "districts")  # which evidence wins when two disagree
OFFSETS = {"gcj02": "GCJ-02", "bd09": "BD-09"}
OFFSET_RANGE_M = (100.0, 2_500.0)  # an offset mistake moves points this far (GCJ-02: 300-600 m, BD-09 ~1 km)
OFFSET_GAIN = 0.25  # the offset explains the gap: undoing it leaves at most this share of the distance
OFFSET_MIN_PAIRS = 5


@dataclass
class Evidence:
    """One kind of evidence: a number per candidate CRS and whether it decides."""

    kind: str  # landmarks | names | districts
    source: str  # where the comparison came from (datasets, city.yaml)
    measure: str  # median_m (smaller is better) | inside_share (larger is better)
    pairs: int  # rows compared
    values: dict[str, float]  # candidate CRS -> the measure
    best: str | None = None
    decisive: bool = False

    def describe(self) -> str:
        shown = ", ".join(f"{c} {_shown(v, self.measure)}" for c, v in self.values.items())
        what = {"median_m": "median distance", "inside_share": "inside their own district"}[self.measure]
        verdict = f"decides for {self.best}" if self.decisive else "does not decide"
        return f"{self.kind} ({self.source}; {self.pairs} rows): {what} {shown} -> {verdict}"

    def as_dict(self) -> dict:
        return {"kind": self.kind, "source": self.source, "measure": self.measure, "pairs": self.pairs,
                "values": {c: round(v, 4) if math.isfinite(v) else None for c, v in self.values.items()},
                "best": self.best,
                "decisive": self.decisive}


@dataclass
class CRSEvidence:
    """Candidate CRSs ranked with the hub's evidence, best first."""

    ranked: list[CRSCandidate]
    evidence: list[Evidence] = field(default_factory=list)
    decided: str | None = None  # the CRS the decisive evidence agrees on
    decided_by: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)  # decisive evidence for another CRS
    sampled: int = 0

    def message(self) -> str:
        if not self.ranked:
            return ""
        lines = [f"evidence from the hub ({self.sampled} positions sampled):"]
        lines += [f"  {e.describe()}" for e in self.evidence] or ["  none: no published feature, district "
                                                                          "or landmark matches these rows"]
        if self.decided:
            lines.append(f"the evidence points to {self.decided} (decided by {', '.join(self.decided_by)}): "
                         f"set source.crs: {self.decided} if the department agrees")
            if self.conflicts:
                lines.append(f"  but {', '.join(self.conflicts)} point elsewhere: check with the department")
        else:
            tied = ", ".join(c.crs for c in self.ranked)
            lines.append(f"no evidence decides between {tied}: ask the department which map the coordinates "
                         "came from (Amap/Tencent: GCJ-02, Baidu: BD-09, GPS: WGS 84)")
        return "\n".join(lines)

    def as_dict(self) -> dict:
        return {"ranked": [c.as_dict() for c in self.ranked], "evidence": [e.as_dict() for e in self.evidence],
                "decided": self.decided, "decided_by": self.decided_by, "conflicts": self.conflicts,
                "sampled": self.sampled}


def _shown(value: float, measure: str) -> str:
    if not math.isfinite(value):
        return "-"
    return f"{value:,.0f} m" if measure == "median_m" else f"{value:.1%}"


# --------------------------------------------------------------------------- sampling


def sample_rows(x: ArrayLike, y: ArrayLike, *columns: ArrayLike | None,
                limit: int = SAMPLE) -> tuple[NDArray, NDArray, list[NDArray | None]]:
    """Finite positions (and the same rows of ``columns``), at most ``limit``, evenly spread."""
    xs, ys = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    keep = np.flatnonzero(np.isfinite(xs) & np.isfinite(ys))
    if keep.size > limit:
        keep = keep[np.linspace(0, keep.size - 1, limit).astype(int)]
    picked = [None if c is None else _text(np.asarray(c, dtype=object)[keep]) for c in columns]
    return xs[keep], ys[keep], picked


def _text(values: NDArray) -> NDArray:
    """Names as stripped strings, '' for missing ones (vectorized: published names may be many)."""
    series = pd.Series(values, dtype=object)
    return series.where(series.notna(), "").astype(str).str.strip().to_numpy(dtype=object)


# --------------------------------------------------------------------------- what the hub publishes


@dataclass
class Published:
    """Published features whose name is wanted: (name, geometry, dataset) columns."""

    names: NDArray
    geometries: NDArray
    datasets: NDArray


@contextlib.contextmanager
def _catalog(hub: Hub, con: duckdb.DuckDBPyConnection | None) -> Iterator[duckdb.DuckDBPyConnection]:
    """``con`` (the caller's catalog connection, left open), else a read-only one closed afterwards: opening
    one costs most of what these checks cost (loading the spatial extension), so a caller holding one
    passes it."""
    if con is not None:
        yield con
        return
    opened = locked_connection(hub.lake)
    try:
        yield opened
    finally:
        opened.close()


def published_named(hub: Hub, wanted: Iterable[str], exclude: str | None = None,
                    standard: str | None = None, con: duckdb.DuckDBPyConnection | None = None) -> Published:
    """Every published feature (of ``standard``, if given) named one of ``wanted`` (its ``name`` or, for a
    district, its ``area_code``: NAME_COLUMNS).

    One query per dataset and naming column, filtered in DuckDB to the wanted names."""
    wanted = sorted({w for w in wanted if w})
    names: list[Any] = []
    geometries: list[Any] = []
    datasets: list[str] = []
    if not wanted:
        return Published(np.array([], dtype=object), np.array([], dtype=object), np.array([], dtype=object))
    with _catalog(hub, con) as catalog:
        for dataset, geometry, column in _named_layers(catalog, exclude, standard):
            rows = catalog.execute(_named_sql(dataset, geometry, column), [wanted]).fetchall()
            names += [r[0] for r in rows]
            geometries += [r[1] for r in rows]
            datasets += [dataset] * len(rows)
    return Published(_text(np.array(names, dtype=object)),
                     shapely.from_wkb(np.array(geometries, dtype=object)) if geometries else np.array([], dtype=object),
                     np.array(datasets, dtype=object))


NAME_COLUMNS = ("name", "area_code")  # what names a published feature: a district by its name or division code


def _named_layers(con, exclude: str | None, standard: str | None) -> list[tuple[str, str, str]]:
    """(dataset, geometry column, naming column) of the published datasets to look names up in."""
    rows = con.execute(f"SELECT dataset, standard FROM {META_SCHEMA}.datasets ORDER BY dataset").fetchall()
    layers = []
    for dataset, its_standard in rows:
        if dataset == exclude or (standard is not None and its_standard != standard):
            continue
        facts = column_facts(con, dataset)
        geometry = next((c["name"] for c in facts if c["is_geometry"]), None)
        present = {c["name"] for c in facts}
        layers += [(dataset, geometry, column) for column in NAME_COLUMNS if geometry and column in present]
    return layers


def _named_sql(dataset: str, geometry: str, column: str) -> str:
    """``SELECT column::VARCHAR, ST_AsWKB(geometry) FROM dept.ds WHERE list_contains(?, column::VARCHAR)``,
    built as a tree."""
    schema, table = dataset.split(".", 1)
    name = exp.cast(exp.column(exp.to_identifier(column, quoted=True)), "VARCHAR")
    geom = exp.column(exp.to_identifier(geometry, quoted=True))
    source = exp.Table(this=exp.to_identifier(table, quoted=True), db=exp.to_identifier(schema, quoted=True))
    select = exp.select(name, exp.Anonymous(this="ST_AsWKB", expressions=[geom])).from_(source).where(
        exp.and_(exp.Anonymous(this="list_contains", expressions=[exp.Placeholder(), name.copy()]),
                 exp.Not(this=exp.Is(this=geom.copy(), expression=exp.Null()))))
    return select.sql(dialect="duckdb")


# --------------------------------------------------------------------------- evidence


def _distances(kind: str, source: str, rows: NDArray, px: NDArray, py: NDArray,
               placed: dict[str, tuple[NDArray, NDArray]], geographic: bool) -> Evidence | None:
    """Median over the file's rows (``rows``: their index per pair) of the distance to the nearest partner."""
    if rows.size == 0:
        return None
    order = np.argsort(rows, kind="stable")
    rows, px, py = rows[order], px[order], py[order]
    starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
    values = {}
    for crs, (tx, ty) in placed.items():
        d = metres_apart(geographic, tx[rows] - px, ty[rows] - py, py)
        d = np.where(np.isfinite(d), d, np.inf)
        values[crs] = float(np.median(np.minimum.reduceat(d, starts)))
    evidence = Evidence(kind, source, "median_m", int(starts.size), values)
    return _judge(evidence)


def _judge(evidence: Evidence) -> Evidence:
    """Name the best candidate; it decides when it is clearly better than the next and enough rows agree."""
    finite = {c: v for c, v in evidence.values.items() if math.isfinite(v)}
    if not finite:
        return evidence
    smaller = evidence.measure == "median_m"
    ordered = sorted(finite, key=lambda c: finite[c] if smaller else -finite[c])
    best = ordered[0]
    evidence.best = best
    enough = evidence.pairs >= MIN_PAIRS[evidence.kind]
    if len(ordered) == 1:
        return evidence
    a, b = finite[best], finite[ordered[1]]
    if smaller:
        evidence.decisive = enough and b - a >= CLEAR_M and a <= CLEAR_RATIO * b
    else:
        evidence.decisive = enough and a - b >= CLEAR_SHARE and (a - b) * evidence.pairs >= CLEAR_POINTS
    return evidence


def _name_pairs(names: NDArray, published: NDArray) -> tuple[NDArray, NDArray]:
    """(row of ``names``, index of ``published``) for every equal non-empty name, leaving out names published
    more than MAX_SAME_NAME times."""
    mine = pd.DataFrame({"name": names, "row": np.arange(names.size)})
    theirs = pd.DataFrame({"name": published, "index": np.arange(published.size)})
    theirs = theirs[(theirs["name"] != "") & (theirs.groupby("name")["name"].transform("size") <= MAX_SAME_NAME)]
    pairs = mine[mine["name"] != ""].merge(theirs, on="name")
    return pairs["row"].to_numpy(), pairs["index"].to_numpy()


def _of_type(geometries: NDArray, types: tuple[int, ...]) -> NDArray[np.bool_]:
    return np.isin(shapely.get_type_id(geometries), types) if geometries.size else np.zeros(0, dtype=bool)


def _name_evidence(names: NDArray, published: Published, placed, geographic: bool) -> Evidence | None:
    points = _of_type(published.geometries, (0, 4))  # points and multipoints
    rows, partners = _name_pairs(names, published.names[points])
    if rows.size == 0:
        return None
    centres = shapely.centroid(published.geometries[points][partners])
    sources = ", ".join(sorted(set(published.datasets[points][partners])))
    return _distances("names", f"same names in {sources}", rows, shapely.get_x(centres), shapely.get_y(centres),
                      placed, geographic)


def _district_evidence(districts: NDArray, published: Published, placed) -> Evidence | None:
    polygons = _of_type(published.geometries, (3, 6))  # polygons and multipolygons
    names, geoms = published.names[polygons], published.geometries[polygons]
    known = np.isin(districts, names) if names.size else np.zeros(districts.size, dtype=bool)
    if not known.any():
        return None
    tree = shapely.STRtree(geoms)
    values = {}
    for crs, (tx, ty) in placed.items():
        points = shapely.points(tx[known], ty[known])
        inside_of, polygon = tree.query(points, predicate="within")
        own = names[polygon] == districts[known][inside_of]
        inside = np.zeros(points.size, dtype=bool)
        inside[inside_of[own]] = True
        values[crs] = float(inside.mean())
    source = ", ".join(sorted(set(published.datasets[polygons][np.isin(names, districts)])))
    return _judge(Evidence("districts", f"polygons of {source}", "inside_share", int(known.sum()), values))


def _landmark_evidence(names: NDArray, landmarks: tuple[Landmark, ...], placed, target: str,
                       geographic: bool) -> Evidence | None:
    listed = [(n.casefold(), i) for i, m in enumerate(landmarks) for n in m.names]
    rows, which = _name_pairs(np.array([n.casefold() for n in names], dtype=object),
                              np.array([n for n, _ in listed], dtype=object))
    if rows.size == 0:
        return None
    which = [landmarks[listed[i][1]] for i in which]
    px, py = transform_xy([m.lon for m in which], [m.lat for m in which], "EPSG:4326", target)
    return _distances("landmarks", "city.yaml landmarks", rows, np.asarray(px), np.asarray(py), placed, geographic)


def _placed(x: NDArray, y: NDArray, candidates: list[CRSCandidate], target: str) -> dict[str, tuple[NDArray, NDArray]]:
    placed = {}
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        for c in candidates:
            a, b = (y, x) if c.swapped else (x, y)
            placed[c.crs + (" (swapped)" if c.swapped else "")] = transform_xy(a, b, c.crs, target)
    return placed


def tied_candidates(x: NDArray, y: NDArray, hub: Hub) -> list[CRSCandidate]:
    """The candidates the range cannot tell apart (standards/crs_detect.py), best first."""
    ranked = rank_crs(x, y, hub.pack.city, hub.target_crs, limit=8)
    if not ranked:
        return []
    return [c for c in ranked if ranked[0].inside_share - c.inside_share < TIE]


def rank_with_evidence(hub: Hub, x: ArrayLike, y: ArrayLike, names: ArrayLike | None = None,
                       districts: ArrayLike | None = None, exclude: str | None = None,
                       con: duckdb.DuckDBPyConnection | None = None) -> CRSEvidence:
    """Rank the CRSs ``x``/``y`` (as the source wrote them) could be in, with the hub's evidence.

    ``names``/``districts``: the rows' name and district (same length as x); ``exclude``: a dataset whose
    published rows are not evidence (the one being checked); ``con``: an open catalog connection to use."""
    xs, ys, (ns, ds) = sample_rows(x, y, names, districts)
    candidates = tied_candidates(xs, ys, hub)
    result = CRSEvidence(candidates, sampled=int(xs.size))
    if not candidates:
        return result
    target = resolve_crs(hub.target_crs)
    placed = _placed(xs, ys, candidates, target.name)
    wanted = set(ns if ns is not None else ()) | set(ds if ds is not None else ())
    published = published_named(hub, wanted, exclude, con=con)
    found = []
    if ns is not None:
        landmarks = load_landmarks(hub.pack.root / "city.yaml")
        found += [_landmark_evidence(ns, landmarks, placed, target.name, target.is_geographic),
                  _name_evidence(ns, published, placed, target.is_geographic)]
    if ds is not None:
        found.append(_district_evidence(ds, published, placed))
    result.evidence = sorted((e for e in found if e is not None), key=lambda e: STRENGTH.index(e.kind))
    _decide(result)
    return result


def _decide(result: CRSEvidence) -> None:
    """The CRS most decisive evidence agrees on (the strongest breaks a tie) goes first."""
    decisive = [e for e in result.evidence if e.decisive]
    if not decisive:
        return
    votes: dict[str, int] = {}
    for e in decisive:
        votes[e.best] = votes.get(e.best, 0) + 1
    winner = max(votes, key=lambda c: (votes[c], -next(i for i, e in enumerate(decisive) if e.best == c)))
    result.decided = winner
    result.decided_by = [e.kind for e in decisive if e.best == winner]
    result.conflicts = [f"{e.kind} ({e.best})" for e in decisive if e.best != winner]
    key = {c: i for i, c in enumerate(result.ranked)}
    label = {c: c.crs + (" (swapped)" if c.swapped else "") for c in result.ranked}
    result.ranked.sort(key=lambda c: (label[c] != winner, key[c]))


def evidence_hint(hub: Hub, chunks: Iterable, name_column: str | None = None, district_column: str | None = None,
                  exclude: str | None = None) -> str:
    """The range's candidates (standards/crs_detect.py) and the hub's evidence, for a source declaring no CRS."""
    first = first_located_chunk(chunks)
    if first is None:
        return ""
    geometry, frame = first.geometry, first.frame
    x, y = centres(geometry)
    name, district = (frame[c].to_numpy() if isinstance(c, str) and c in frame.columns else None
                      for c in (name_column, district_column))  # a derived field ({constant: ...}) is no column
    found = rank_with_evidence(hub, x, y, name, district, exclude)
    text = candidates_message(found.ranked) if found.ranked else candidates_message(
        rank_crs(*positions(geometry), hub.pack.city, hub.target_crs))
    return text + ("\n" + found.message() if found.ranked else "")


def centres(geometry: ArrayLike) -> tuple[NDArray, NDArray]:
    """Each geometry's bounding-box centre (NaN for a missing one), row for row."""
    geoms = np.asarray(geometry, dtype=object)
    bounds = shapely.bounds(geoms)
    return (bounds[:, 0] + bounds[:, 2]) / 2, (bounds[:, 1] + bounds[:, 3]) / 2


# --------------------------------------------------------------------------- offsets at publish


def offset_findings(hub: Hub, dataset_id: str, x: ArrayLike, y: ArrayLike, names: ArrayLike | None = None,
                    standard: str | None = None,
                    con: duckdb.DuckDBPyConnection | None = None) -> tuple[list[dict], str]:
    """Do ``dataset_id``'s staged points (``x``/``y`` in the hub's target CRS) sit one GCJ-02 or BD-09 offset
    away from the published features of its standard?

    Each staged point is paired with a published feature of the same standard (other datasets and this one's
    served version): by name when ``names`` are given and match, else with its nearest neighbour. The median
    distance of the pairs as staged is compared with the median after undoing a GCJ-02 / BD-09 offset (the
    points were read off a Chinese web map but declared WGS 84) or applying one (the published features are
    the shifted ones). When the points are 100-2,500 m off and undoing an offset brings them to within a
    quarter of that, a finding says so, with the numbers. Returns ``(findings, message)``: plain dicts and
    one line for the run's log ('' when there is none).

    ``standard``: the dataset's (default: the catalog's, for a dataset already published); ``con``: an open catalog
    connection to read on (without one, a read-only connection is opened and closed: ~0.3-3 s of the cost).
    """
    xs, ys, (ns,) = sample_rows(x, y, names)
    if xs.size == 0:
        return [], ""
    target = resolve_crs(hub.target_crs)
    with _catalog(hub, con) as catalog:
        standard = standard or _standard_of(dataset_id, catalog)
        if standard is None:
            return [], ""
        published = _published_near(catalog, xs, ys, standard, dataset_id, target.is_geographic)
    if published[0].size < 1:
        return [], ""
    hypotheses = _offset_hypotheses(xs, ys, target.name)
    matched = None
    if ns is not None and published[2].size:
        matched = _by_name(ns, published)
    pairs = "name" if matched is not None and matched[0].size >= OFFSET_MIN_PAIRS else "position"
    medians = {}
    for label, (hx, hy) in hypotheses.items():
        medians[label] = _pair_median(hx, hy, published, matched if pairs == "name" else None, target.is_geographic)
    as_is, n = medians.pop("as declared")
    if n < OFFSET_MIN_PAIRS or not OFFSET_RANGE_M[0] <= as_is <= OFFSET_RANGE_M[1]:
        return [], ""
    best = min(medians, key=lambda k: medians[k][0])
    if medians[best][0] > OFFSET_GAIN * as_is:
        return [], ""
    finding = {
        "check": "crs_offset", "dataset": dataset_id, "standard": standard, "paired_by": pairs, "pairs": n,
        "median_m_as_declared": round(as_is, 1), "likely": best,
        "median_m_if": {k: round(v[0], 1) for k, v in medians.items()},
    }
    if best.startswith("published"):
        advice = "the published features of this standard may be the shifted ones: check their source.crs"
    else:
        advice = f"check source.crs: the coordinates look like {best.split()[0]} read off a Chinese web map"
    finding["message"] = (
        f"{dataset_id}: its points sit a median {as_is:,.0f} m from published {standard} features ({n} pairs by "
        f"{pairs}); {best}: {medians[best][0]:,.0f} m. {advice}")
    return [finding], finding["message"]


def _standard_of(dataset_id: str, con: duckdb.DuckDBPyConnection) -> str | None:
    """The standard the catalog holds ``dataset_id`` under (a caller staging a first version passes its own:
    reading the registry here would make hub.manifest -> crs_evidence -> registry -> manifest a cycle)."""
    row = con.execute(f"SELECT standard FROM {META_SCHEMA}.datasets WHERE dataset = ?", [dataset_id]).fetchone()
    return row[0] if row else None


def _offset_hypotheses(x: NDArray, y: NDArray, target: str) -> dict[str, tuple[NDArray, NDArray]]:
    """The staged points as declared, and where they would be under each offset mistake (in ``target``)."""
    lon, lat = transform_xy(x, y, target, "EPSG:4326")
    out = {"as declared": (x, y)}
    for label in OFFSETS.values():
        out[f"{label} declared as WGS 84"] = transform_xy(lon, lat, label, target)
        out[f"published features in {label}"] = transform_xy(*transform_xy(lon, lat, "EPSG:4326", label),
                                                              "EPSG:4326", target)
    return out


def _published_near(con: duckdb.DuckDBPyConnection, x: NDArray, y: NDArray, standard: str, dataset: str,
                    geographic: bool) -> tuple[NDArray, NDArray, NDArray]:
    """(px, py, names) of published features (their centres) of ``standard`` around the staged points (3 km
    margin), read as numpy columns."""
    margin = 3_000.0 / 111_000.0 if geographic else 3_000.0
    box = [float(np.min(x)) - margin, float(np.min(y)) - margin, float(np.max(x)) + margin, float(np.max(y)) + margin]
    parts = [con.execute(_near_sql(layer, geometry, has_name), box).fetchnumpy()
             for layer, geometry, has_name in _standard_layers(con, standard, dataset)]
    if not parts:
        return np.empty(0), np.empty(0), np.empty(0, dtype=object)
    px, py, pn = (np.concatenate([np.asarray(p[k]) for p in parts]) for k in ("x", "y", "name"))
    ok = np.isfinite(px.astype(np.float64)) & np.isfinite(py.astype(np.float64))
    return px.astype(np.float64)[ok], py.astype(np.float64)[ok], _text(pn.astype(object)[ok])


MAX_PEERS = 8  # datasets of the standard compared with, the largest first: a run --all stays linear


def _standard_layers(con, standard: str, dataset: str) -> list[tuple[str, str, bool]]:
    """The datasets of ``standard`` to compare with (``dataset``'s served version and the largest others, at most
    MAX_PEERS in all): their geometry column and whether they carry a name."""
    rows = con.execute(
        f"SELECT d.dataset FROM {META_SCHEMA}.datasets d LEFT JOIN {META_SCHEMA}.quality q USING (dataset) "
        "WHERE d.standard = ? ORDER BY d.dataset = ? DESC, q.rows_read DESC NULLS LAST, d.dataset LIMIT ?",
        [standard, dataset, MAX_PEERS]).fetchall()
    layers = []
    for (layer,) in rows:
        facts = column_facts(con, layer)
        geometry = next((c["name"] for c in facts if c["is_geometry"]), None)
        if geometry:
            layers.append((layer, geometry, any(c["name"] == "name" for c in facts)))
    return layers


MAX_PUBLISHED = 200_000  # published features read per dataset around the staged points


def _near_sql(dataset: str, geometry: str, has_name: bool) -> str:
    """Centres of ``dataset``'s features inside the box ``?, ?, ?, ?``, with their name, built as a tree."""
    schema, table = dataset.split(".", 1)
    geom = exp.column(exp.to_identifier(geometry, quoted=True))
    centre = exp.Anonymous(this="ST_Centroid", expressions=[geom])
    name = exp.column(exp.to_identifier("name", quoted=True)) if has_name else exp.cast(exp.Null(), "VARCHAR")
    source = exp.Table(this=exp.to_identifier(table, quoted=True), db=exp.to_identifier(schema, quoted=True))
    box = exp.Anonymous(this="ST_MakeEnvelope", expressions=[exp.Placeholder() for _ in range(4)])
    return (exp.select(exp.alias_(exp.Anonymous(this="ST_X", expressions=[centre]), "x"),
                       exp.alias_(exp.Anonymous(this="ST_Y", expressions=[centre.copy()]), "y"),
                       exp.alias_(name, "name"))
            .from_(source)
            .where(exp.Anonymous(this="ST_Intersects_Extent", expressions=[geom.copy(), box]))
            .limit(MAX_PUBLISHED).sql(dialect="duckdb"))


def _by_name(names: NDArray, published: tuple[NDArray, NDArray, NDArray]) -> tuple[NDArray, NDArray] | None:
    """(staged row, published index) of rows whose name is published once or a few times."""
    rows, partners = _name_pairs(names, published[2])
    return (rows, partners) if rows.size else None


def _pair_median(x: NDArray, y: NDArray, published: tuple[NDArray, NDArray, NDArray],
                 matched: tuple[NDArray, NDArray] | None, geographic: bool) -> tuple[float, int]:
    px, py = published[0], published[1]
    if matched is not None:
        rows, partner = matched
        d = metres_apart(geographic, x[rows] - px[partner], y[rows] - py[partner], py[partner])
        order = np.argsort(rows, kind="stable")
        rows, d = rows[order], d[order]
        starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
        nearest = np.minimum.reduceat(d, starts)
        return float(np.median(nearest)), int(nearest.size)
    tree = shapely.STRtree(shapely.points(px, py))
    staged = shapely.points(x, y)
    rows, nearest = tree.query_nearest(staged, all_matches=False)
    d = metres_apart(geographic, x[rows] - px[nearest], y[rows] - py[nearest], py[nearest])
    return float(np.median(d)), int(d.size)
