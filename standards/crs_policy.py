"""Whether a reprojection is good enough to publish, and its provenance record.

PROJ knows, for each pair of datums, a list of transformations with a stated
accuracy; where it knows none it falls back to a "ballpark" transformation
that simply assumes the datums coincide. For Beijing 1954 or Xian 1980 to
CGCS2000 that is wrong by tens to a hundred metres, and their shifts to WGS 84
exist only for some oil basins. The hub refuses such a reprojection (and any
with a stated accuracy worse than the city's ``transform_accuracy_m``) unless
the manifest accepts the error with ``accept_accuracy_m``.

One ballpark is accepted by design: WGS 84 to CGCS2000 (and so GCJ-02, BD-09,
Web Mercator and UTM, which are WGS 84 based). Both are aligned to the ITRF
(CGCS2000 at epoch 2000.0, WGS 84's current realizations to within centimetres),
so they differ by the plate motion since 2000, a few centimetres a year in
China: under a metre. PROJ has no transformation between them because none is
published; treating them as equal is the national practice for web-map data.
"""

from __future__ import annotations

from typing import Any

from twinhub.standards.crs import HubCRS, operation_summary
from twinhub.standards.pack import StandardsError

# geodetic datums that agree to under a metre (see the module docstring)
ITRF_ALIGNED = frozenset({"World Geodetic System 1984 ensemble", "World Geodetic System 1984", "China 2000"})
ITRF_ALIGNED_ACCURACY_M = 1.0
EQUIVALENCE_NOTE = (
    "WGS 84 and CGCS2000 are both aligned to the ITRF and differ by under a metre; PROJ has no published "
    "transformation between them and treats them as equal, which the hub accepts by design"
)


class CRSRefused(StandardsError):
    """The reprojection is too inaccurate to publish without the manifest accepting it."""


def _datum(crs: HubCRS) -> str | None:
    geodetic = crs.crs.geodetic_crs
    datum = geodetic.datum if geodetic is not None else None
    return datum.name if datum is not None else None


def _equivalent(source: HubCRS, target: HubCRS) -> bool:
    return _datum(source) in ITRF_ALIGNED and _datum(target) in ITRF_ALIGNED


def reprojection_record(
    source: HubCRS,
    target: HubCRS,
    *,
    declared: str,
    how: str,
    area: tuple[float, float, float, float] | None,
    tolerance_m: float,
    accept_accuracy_m: float | None = None,
) -> dict[str, Any]:
    """The CRS provenance of a run; raises :class:`CRSRefused` when the hub must not reproject.

    ``declared`` is the CRS as written, ``how`` where it came from (see
    docs/standards.md, ``crs``); ``area`` (lon/lat) is the city, which picks the
    PROJ operation where the datum shift is region-dependent.
    """
    summary = operation_summary(source, target, area=area)
    record: dict[str, Any] = {
        "declared": declared,
        "how": how,
        "source": source.name,
        "source_description": source.description,
        "target": target.name,
        "steps": summary["steps"],
        "accuracy_m": summary["accuracy_m"],
        "ballpark": summary["ballpark"],
        "accepted": None,
    }
    if summary["ballpark"] and _equivalent(source, target):
        record.update(accuracy_m=ITRF_ALIGNED_ACCURACY_M, accepted="by design: " + EQUIVALENCE_NOTE)
        return record
    stated = summary["accuracy_m"]
    good = not summary["ballpark"] and stated is not None and stated <= tolerance_m
    if good:
        return record
    if accept_accuracy_m is not None and (stated is None or accept_accuracy_m >= stated):
        record.update(accuracy_m=stated if stated is not None else accept_accuracy_m,
                      accepted=f"by the manifest: accept_accuracy_m {accept_accuracy_m:g}")
        return record
    raise CRSRefused(_refusal(source, target, summary, tolerance_m, accept_accuracy_m))


def _refusal(source: HubCRS, target: HubCRS, summary: dict, tolerance_m: float, accepted: float | None) -> str:
    what = f"reprojecting {source.description} to {target.name}"
    if summary["ballpark"]:
        why = (f"{what} needs a datum shift PROJ does not know for this city: it would only assume the two "
               "datums coincide (a 'ballpark' transformation, typically tens to ~100 m off for Beijing 1954 "
               "or Xian 1980)")
        fix = "set accept_accuracy_m: <metres> in the manifest to publish with an error you have estimated"
    else:
        stated = summary["accuracy_m"]  # None: PROJ states no accuracy for the operation
        why = (f"{what} uses {summary['steps'][-1].split(' [', 1)[0].removeprefix('PROJ: ')}, stated accurate to "
               f"{f'{stated:g} m' if stated is not None else 'no stated accuracy'}, not within the hub's "
               f"{tolerance_m:g} m (city.yaml transform_accuracy_m)")
        fix = (f"set accept_accuracy_m: {stated:g} (or more) in the manifest to publish with it" if stated is not None
               else "set accept_accuracy_m: <metres> in the manifest to publish with an error you have estimated")
        if accepted is not None:
            fix = f"accept_accuracy_m {accepted:g} is below that; " + fix
    return (f"{why}. Ask the data's owner for coordinates in {target.name} or for the official transformation "
            f"for the area (give it in source.crs as WKT with its datum shift), or {fix}")
