"""Inspect a source nobody has described yet: columns, encoding, geometry, CRS candidates.

Only the first chunk is read (``SAMPLE_ROWS``); the dry run reads the rest.
The CRS is never guessed silently: a declared one is taken (from ``--crs`` or the
source itself), otherwise the candidates ranked from the coordinates against the
city (standards/crs_detect.py) are listed with how sure the ranking is, and the
best one is proposed for the department to confirm.
"""

from __future__ import annotations

import pathlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from twinhub.connectors import ConfigProblem, Connector, SourceError, open_source
from twinhub.guided import semantics
from twinhub.guided.areas import AreaUnit, area_units
from twinhub.guided.locate import Located, geometry_columns, xy_pairs
from twinhub.guided.profile import ColumnProfile, profile_frame
from twinhub.guided.source import GuidedError
from twinhub.hub.home import Hub
from twinhub.standards.crs import UnknownCRS, resolve_crs
from twinhub.standards.crs_detect import CRSCandidate, positions, rank_crs
from twinhub.standards.privacy import PrivacyScan

SAMPLE_ROWS = 10_000
MAX_HEADER_ROW = 5  # title rows above a workbook's header that the inspection looks past
SURE = 0.5  # a detected CRS with no more confidence than this (a tie) is proposed with a TODO
_CRS_WORDS = ("crs", "srs", "epsg", "coordinate reference", "spatial reference", "projection", "坐标系")


@dataclass
class CRSChoice:
    crs: str | None  # what the proposal writes in source.crs (None: the source declares it)
    how: str  # declared | given | detected | none
    confidence: float
    candidates: list[CRSCandidate] = field(default_factory=list)
    evidence: list[str] = field(default_factory=list)
    decided_by: list[str] = field(default_factory=list)  # the hub's evidence that broke a tie (hub/crs_evidence.py)

    @property
    def sure(self) -> bool:
        return self.how in ("declared", "given") or self.confidence > SURE or bool(self.decided_by)

    def as_dict(self) -> dict:
        return {"crs": self.crs, "how": self.how, "confidence": round(self.confidence, 4), "sure": self.sure,
                "candidates": [c.as_dict() for c in self.candidates], "evidence": self.evidence}


@dataclass
class Profile:
    """What the hub found in the source's first chunk."""

    source: dict  # manifest source keys, with the geometry keys and crs filled in
    describe: str
    encoding: str | None
    rows_sampled: int
    columns: list[ColumnProfile]
    located: Located | None  # how tabular rows are located; None when the source has its own geometry
    geometry_type: str | None
    crs: CRSChoice
    frame: pd.DataFrame = field(repr=False)
    notes: list[str] = field(default_factory=list)
    privacy: dict = field(default_factory=dict)  # standards/privacy.py's findings in the sample, per source column
    areas: dict[str, AreaUnit] = field(default_factory=dict)  # numeric columns of a polygon source: their area unit
    looks: dict[str, str] = field(default_factory=dict)  # per column: what its values look like (semantics.py)
    positions: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)  # the sample's x, y as written

    @property
    def geometry_columns(self) -> tuple[str, ...]:
        return self.located.columns if self.located else ()

    @property
    def attribute_columns(self) -> list[ColumnProfile]:
        return [c for c in self.columns if c.name not in self.geometry_columns]

    def as_dict(self) -> dict:
        return {
            "source": self.source, "describe": self.describe, "encoding": self.encoding,
            "rows_sampled": self.rows_sampled, "columns": [c.as_dict() for c in self.columns],
            "geometry": {"columns": list(self.geometry_columns), "kind": self.located.kind if self.located else
                         ("source" if self.geometry_type else None), "type": self.geometry_type},
            "crs": self.crs.as_dict(), "notes": self.notes, "privacy": self.privacy,
            "areas": {c: {"unit": a.unit, "ratio": round(a.ratio, 4), "why": a.why} for c, a in self.areas.items()},
            "looks": self.looks,
        }


def _open(spec: dict, hub: Hub, base_dir: pathlib.Path | None) -> Connector:
    try:
        connector = open_source(spec, base_dir, policy=hub.network_policy)
        connector.check()
    except ConfigProblem as exc:
        raise GuidedError(f"cannot read the source: {exc}") from None
    except SourceError as exc:
        raise GuidedError(str(exc)) from None
    return connector


def _first_chunk(connector: Connector):
    try:
        chunk = next(iter(connector.chunks(SAMPLE_ROWS)), None)
    except SourceError as exc:
        raise GuidedError(str(exc)) from None
    if chunk is None or chunk.frame.empty:
        raise GuidedError(f"{connector.describe()}: the source has no rows to inspect")
    return chunk


def _geometry_type(geometry: np.ndarray | None) -> str | None:
    if geometry is None:
        return None
    kinds = pd.Series([g.geom_type for g in geometry if g is not None])
    return str(kinds.mode().iloc[0]) if not kinds.empty else None


def _ranges(x: np.ndarray, y: np.ndarray, located: Located | None) -> str:
    names = (located.keys.get("x", "x"), located.keys.get("y", "y")) if located and located.kind == "xy" else ("x", "y")
    if x.size == 0:
        return "no positions to rank"
    return (f"{names[0]} {np.nanmin(x):,.6g} … {np.nanmax(x):,.6g}, {names[1]} {np.nanmin(y):,.6g} … {np.nanmax(y):,.6g} "
            f"({x.size} positions sampled)")


def _said_in_columns(frame: pd.DataFrame) -> list[str]:
    """What columns named like a CRS say (the Adur toilets' CoordinateReferenceSystem: 'OSGB36')."""
    said = []
    for column in frame.columns:
        words = str(column).casefold().replace("_", " ")
        spaced = "".join(" " + ch.lower() if ch.isupper() else ch for ch in str(column)).strip().casefold()
        if any(w in words or w in spaced for w in _CRS_WORDS):
            counts = frame[column].astype("string").str.strip().value_counts().head(3)
            if not counts.empty:
                listed = ", ".join(f"{v!r} ({n} rows)" for v, n in counts.items())
                said.append(f"column {column} says {listed}: check that it agrees with the proposed CRS")
    return said


def _rank(geometry: np.ndarray, hub: Hub) -> list[CRSCandidate]:
    x, y = positions(geometry)
    return rank_crs(x, y, hub.pack.city, hub.target_crs)


def _detect(geometry: np.ndarray, hub: Hub, located: Located | None, frame: pd.DataFrame) -> CRSChoice:
    x, y = positions(geometry)
    candidates = rank_crs(x, y, hub.pack.city, hub.target_crs)
    evidence = [_ranges(x, y, located)] + _said_in_columns(frame)
    if located is not None and located.kind == "text" and frame[located.keys["geometry"]].astype("string").str.lstrip().str.startswith("{").mean() > 0.5:
        evidence.append("GeoJSON is WGS 84 longitude/latitude by definition (RFC 7946) unless its producer says otherwise")
    if not candidates:
        return CRSChoice(None, "none", 0.0, [], evidence)
    best = candidates[0]
    evidence.append(f"{best.crs}{' with x and y swapped' if best.swapped else ''} puts {best.inside_share:.0%} "
                    f"of the sampled positions inside {hub.pack.city.name}")
    return CRSChoice(best.crs, "detected", best.confidence, candidates, evidence)


def _choose_location(options: list[Located], connector: Connector, hub: Hub) -> tuple[Located | None, object, Connector]:
    """The location option whose positions fit the city best, its first chunk and its connector."""
    best, best_share, best_chunk, best_connector = None, -1.0, None, connector
    for option in options[:6]:
        try:
            trial = open_source({**connector.config.model_dump(exclude_none=True), **option.keys}, policy=hub.network_policy)
            chunk = next(iter(trial.chunks(2_000)))
        except (SourceError, ConfigProblem, StopIteration):
            continue
        ranked = _rank(chunk.geometry, hub) if chunk.geometry is not None else []
        share = ranked[0].inside_share if ranked else 0.0
        if share > best_share:
            best, best_share, best_chunk, best_connector = option, share, chunk, trial
    return best, best_chunk, best_connector


def _swap(source: dict) -> dict:
    return {**source, "x": source["y"], "y": source["x"]}


def _read_first(spec: dict, hub: Hub, base_dir: pathlib.Path | None) -> tuple[Connector, object, dict]:
    """The connector and first chunk; a workbook with title rows is retried with header_row 2..MAX_HEADER_ROW."""
    try:
        connector = _open(spec, hub, base_dir)
        return connector, _first_chunk(connector), spec
    except GuidedError as first:
        if spec.get("format") != "xlsx" or "header row" not in str(first) or "header_row" in spec:
            raise
        for row in range(2, MAX_HEADER_ROW + 1):
            try:
                connector = _open({**spec, "header_row": row}, hub, base_dir)
                return connector, _first_chunk(connector), {**spec, "header_row": row}
            except GuidedError:
                continue
        raise first from None


def inspect_source(spec: dict, hub: Hub, base_dir: pathlib.Path | None = None, crs: str | None = None) -> Profile:
    """Profile ``spec``'s first chunk, find its geometry and rank its CRS candidates."""
    connector, chunk, spec = _read_first(spec, hub, base_dir)
    columns = profile_frame(chunk.frame)
    source = connector.config.model_dump(exclude_none=True, exclude_defaults=True) | {"format": connector.name}
    source = {k: v for k, v in {**spec, **source}.items() if v is not None}
    notes: list[str] = []
    located, geometry = None, chunk.geometry
    if geometry is None:
        options = geometry_columns(columns) + xy_pairs(columns)
        located, trial, connector = _choose_location(options, connector, hub)
        if located is not None:
            source.update(located.keys)
            geometry = trial.geometry
            notes.append(located.note)
        else:
            notes.append("no geometry found: no geometry column, no WKT/GeoJSON text and no x/y columns")
    encoding = connector.encoding() if hasattr(connector, "encoding") and callable(connector.encoding) else None
    declared = connector.crs() if not spec.get("crs") else spec["crs"]  # e.g. the SRID of a located PostGIS column
    if crs:
        try:
            resolved = resolve_crs(crs).name
            choice = CRSChoice(crs if crs.upper().startswith("EPSG:") else resolved, "given", 1.0,
                               evidence=[f"given with --crs {crs}"])
        except UnknownCRS as exc:
            raise GuidedError(f"--crs: {exc}") from None
        source["crs"] = choice.crs
    elif declared:
        choice = CRSChoice(None, "declared", 1.0, evidence=[f"the source declares {declared}"])
    elif geometry is not None:
        choice = _detect(geometry, hub, located, chunk.frame)
        if choice.crs:
            source["crs"] = choice.crs
            if choice.candidates[0].swapped and "x" in source:
                source = _swap(source)
                notes.append("the best CRS reads the columns the other way round: x and y are swapped in the proposal")
    else:
        choice = CRSChoice(None, "none", 0.0)
    located_columns = located.columns if located else ()
    numeric = [c.name for c in columns if c.type in ("integer", "number") and c.name not in located_columns]
    areas = area_units(chunk.frame.rename(columns=str), numeric, geometry, source.get("crs") or declared)
    looks = {c.name: said for c in columns if c.name not in located_columns and (said := semantics.describe(c))}
    looks.update({c: a.why for c, a in areas.items() if a.unit is not None})
    return Profile(source=source, describe=connector.describe(), encoding=encoding, rows_sampled=len(chunk.frame),
                   columns=columns, located=located, geometry_type=_geometry_type(geometry), crs=choice,
                   frame=chunk.frame, notes=notes, privacy=_personal_data(chunk.frame, located), areas=areas,
                   looks=looks, positions=positions(geometry) if geometry is not None else None)


def _personal_data(frame: pd.DataFrame, located: Located | None) -> dict:
    """Personal data in the sample (phones, e-mails, resident IDs...), redacted examples only."""
    scan = PrivacyScan(skip=located.columns if located else ())
    scan.feed(frame.rename(columns=str))
    return scan.report()["found"]
