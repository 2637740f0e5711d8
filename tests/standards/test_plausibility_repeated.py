"""Repeated positions found from repeated x first: the same counts and order as a unique of all points."""

from __future__ import annotations

import numpy as np

from twinhub.standards.plausibility import _repeated


def _all_at_once(x, y):
    values, counts = np.unique(x + 1j * y, return_counts=True)
    return {complex(v): int(n) for v, n in zip(values[counts > 1], counts[counts > 1])}


def test_repeated_positions_match_a_unique_of_every_point():
    rng = np.random.default_rng(5)
    x, y = rng.integers(0, 40, 5000).astype(float), rng.integers(0, 40, 5000).astype(float)
    x[:50], y[:50] = 0.0, -0.0  # 0.0 and -0.0 are one position
    x[50:60] = -0.0
    for a, b in ((x, y), (x + 0.5, y), (rng.uniform(size=300), rng.uniform(size=300)), (x[:0], y[:0])):
        got = _repeated(a, b)
        assert got == _all_at_once(a, b)
        assert list(got) == list(_all_at_once(a, b))
    assert _repeated(x, y)[0j] >= 50
