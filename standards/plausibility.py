"""Why geometries fall outside the city: a diagnosis for the run's report.

The gate itself is a pandera check (``outside_city`` in :mod:`standards.compile`);
it quarantines each row. This module looks at the rejected positions as they
were written and names the likely cause, e.g.::

    37 of 40 points outside the city fall inside if x and y are swapped (source rows 3, 8, 9, ...)

Causes, tried in this order on each rejected position:

``swapped_axes``
    inside the city when x and y are exchanged.
``placeholder``
    (0, 0), x equal to y, or one position repeated among the rejected ones
    (Banqiao's car parks at (22000, 22000)).
``other_crs``
    inside the city when read in another CRS (GCJ-02 for WGS 84, a projected grid
    for degrees, ...): tried when several positions are still unexplained.
``one_coordinate_off``
    x is within the city's range but y is not, or the other way round: a typo.
``far_away``
    none of these.

Separately, positions shared by many rows *inside* the city are reported as
``repeated_positions`` (Boston 311 puts unknown locations on one point near
City Hall); those rows are not quarantined, a person has to judge them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from twinhub.standards.crs import HubCRS, transform_xy
from twinhub.standards.crs_detect import rank_crs
from twinhub.standards.pack import City

KEEP = 100_000  # rejected positions kept for the diagnosis
MIN_FOR_OTHER_CRS = 3  # unexplained positions before other CRSs are tried
REPEATED_SHARE = 0.05  # a position shared by this share of the points (and at least REPEATED_MIN) is reported
REPEATED_MIN = 3


def _fmt(v: float) -> str:
    return f"{v:.6g}"


def _rows(rows: list[int], limit: int = 10) -> str:
    shown = ", ".join(str(r) for r in rows[:limit])
    return shown + (", ..." if len(rows) > limit else "")


def _repeated(x: np.ndarray, y: np.ndarray) -> dict[complex, int]:
    """Positions written more than once, with their counts, in ascending (x, y) order.

    Only the points whose x repeats can repeat a position: a hash of the x alone finds them, and
    the (complex, sorting) unique runs on those few rather than on every point."""
    candidates = pd.Series(x).duplicated(keep=False).to_numpy()
    if not candidates.any():
        return {}
    values, counts = np.unique(x[candidates] + 1j * y[candidates], return_counts=True)
    return {complex(v): int(n) for v, n in zip(values[counts > 1], counts[counts > 1])}


@dataclass
class Plausibility:
    """Collects a run's rejected and repeated positions chunk by chunk; :meth:`diagnose` at the end."""

    source: HubCRS
    target: HubCRS
    city: City
    gate: tuple[float, float, float, float]
    points: int = 0
    outside: int = 0
    _x: list = field(default_factory=list)
    _y: list = field(default_factory=list)
    _rows: list = field(default_factory=list)
    _repeated: Counter = field(default_factory=Counter)

    def add(self, x: np.ndarray, y: np.ndarray, source_rows: np.ndarray, outside: np.ndarray) -> None:
        """Positions (source CRS) of one chunk's geometries; ``outside`` marks those the gate rejected."""
        finite = np.isfinite(x) & np.isfinite(y)
        self.points += int(finite.sum())
        self.outside += int(outside.sum())
        room = KEEP - sum(len(a) for a in self._x)
        if room > 0 and outside.any():
            self._x.append(x[outside][:room])
            self._y.append(y[outside][:room])
            self._rows.append(np.asarray(source_rows)[outside][:room])
        self._repeated.update(_repeated(x[finite], y[finite]))

    def _inside(self, x: np.ndarray, y: np.ndarray, crs: HubCRS | str) -> np.ndarray:
        with np.errstate(all="ignore"):
            tx, ty = transform_xy(x, y, crs, self.target)
        g = self.gate
        return (tx >= g[0]) & (tx <= g[2]) & (ty >= g[1]) & (ty <= g[3])

    def _one_off(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(only y is out of the city's range, only x is), after reprojection."""
        with np.errstate(all="ignore"):
            tx, ty = transform_xy(x, y, self.source, self.target)
        g = self.gate
        x_in, y_in = (tx >= g[0]) & (tx <= g[2]), (ty >= g[1]) & (ty <= g[3])
        if not np.isfinite(tx).all():  # positions PROJ cannot reproject: judge their raw ranges instead
            gx, gy = transform_xy([g[0], g[2]], [g[1], g[3]], self.target, self.source)
            bad = ~(np.isfinite(tx) & np.isfinite(ty))
            x_in[bad] = (x[bad] >= min(gx)) & (x[bad] <= max(gx))
            y_in[bad] = (y[bad] >= min(gy)) & (y[bad] <= max(gy))
        return x_in & ~y_in, y_in & ~x_in

    def diagnose(self) -> dict:
        """The run-details record ``plausibility`` (see docs/standards.md)."""
        record = {"points": self.points, "outside_city": self.outside, "causes": [],
                  "repeated_positions": self._repeated_positions()}
        if not self._x:
            return record
        x, y = np.concatenate(self._x), np.concatenate(self._y)
        rows = np.concatenate(self._rows).astype(int)
        n = len(x)
        left = np.ones(n, dtype=bool)

        def explain(cause: str, hit: np.ndarray, message: str, **extra) -> None:
            nonlocal left
            hit = hit & left
            if hit.any():
                rows_hit = sorted(int(r) for r in rows[hit])
                record["causes"].append({
                    "cause": cause, "rows": int(hit.sum()), "of": n,
                    "message": f"{int(hit.sum())} of {n} {message} (source rows {_rows(rows_hit)})",
                    "source_rows": rows_hit[:50], **extra,
                })
                left = left & ~hit

        explain("swapped_axes", self._inside(y, x, self.source),
                "points outside the city fall inside if x and y are swapped")
        keys = x + 1j * y
        repeats = Counter(keys.tolist())
        placeholder = ((x == 0) & (y == 0) | (x == y) | np.array([repeats[k] > 1 for k in keys.tolist()])) & left
        positions = sorted({(float(a), float(b)) for a, b in zip(x[placeholder], y[placeholder])})[:5]
        explain("placeholder", placeholder,
                "points outside the city sit on placeholder positions "
                + ", ".join(f"({_fmt(a)}, {_fmt(b)})" for a, b in positions),
                positions=[list(p) for p in positions])
        if left.sum() >= MIN_FOR_OTHER_CRS:
            self._other_crs(x, y, left, explain)
        y_off, x_off = self._one_off(x, y)
        explain("one_coordinate_off", y_off, "points outside the city have x inside the city's range but not y "
                "(a typo in y?)", axis="y")
        explain("one_coordinate_off", x_off, "points outside the city have y inside the city's range but not x "
                "(a typo in x?)", axis="x")
        explain("far_away", left.copy(), f"points outside the city fit no known cause{self._distance(x, y, left)}; "
                "check them at the source")
        return record

    def _distance(self, x: np.ndarray, y: np.ndarray, which: np.ndarray) -> str:
        """", typically ~N km from the city" for the positions ``which`` (empty if unknown)."""
        with np.errstate(all="ignore"):
            tx, ty = transform_xy(x[which], y[which], self.source, self.target)
        g = self.gate
        dx, dy = np.maximum(g[0] - tx, 0) + np.maximum(tx - g[2], 0), np.maximum(g[1] - ty, 0) + np.maximum(ty - g[3], 0)
        if self.target.is_geographic:
            dx, dy = dx * 111_320.0 * np.cos(np.radians((g[1] + g[3]) / 2)), dy * 110_574.0
        km = np.nanmedian(np.hypot(dx, dy)) / 1000 if which.any() else np.nan
        return f", typically ~{km:,.0f} km from the city" if np.isfinite(km) else ""

    def _other_crs(self, x: np.ndarray, y: np.ndarray, left: np.ndarray, explain) -> None:
        candidates = [c for c in rank_crs(x[left], y[left], self.city, self.target.name, limit=3)
                      if c.crs != self.source.name and not c.swapped and c.inside_share >= 0.5]
        if candidates:
            best = candidates[0]
            explain("other_crs", self._inside(x, y, best.crs),
                    f"points outside the city fall inside if read as {best.crs} ({best.title}) "
                    f"rather than {self.source.name}", crs=best.crs, alike=list(best.alike))

    def _repeated_positions(self) -> list[dict]:
        threshold = max(REPEATED_MIN, REPEATED_SHARE * self.points)
        found = []
        for position, rows in self._repeated.most_common(5):
            if rows < threshold:
                break
            found.append({
                "x": position.real, "y": position.imag, "rows": rows, "of": self.points,
                "message": f"{rows} of {self.points} points share one position ({_fmt(position.real)}, "
                           f"{_fmt(position.imag)}) as written: a placeholder for unknown locations?",
            })
        return found

    def messages(self, record: dict) -> list[str]:
        return [c["message"] for c in record["causes"]] + [r["message"] for r in record["repeated_positions"]]
