"""The iterative inverses split across threads give the very same coordinates as in one piece."""

from __future__ import annotations

import numpy as np
import pytest

from twinhub.standards import chinese_crs


@pytest.mark.parametrize("convert", [chinese_crs.gcj02_to_wgs84, chinese_crs.bd09_to_wgs84, chinese_crs.bd09_to_gcj02])
def test_split_inverse_is_bitwise_the_whole_array_inverse(convert, monkeypatch):
    rng = np.random.default_rng(11)
    n = 50_001
    lon, lat = rng.uniform(73, 135, n), rng.uniform(18, 53, n)
    lon[::97], lat[5::101] = np.nan, np.inf
    lon[7::89] = rng.uniform(-170, 60, len(lon[7::89]))  # out of China: unchanged by GCJ-02
    monkeypatch.setattr(chinese_crs, "_workers", lambda: 2)
    assert len(chinese_crs._parts(n)) == 2
    split = convert(lon, lat)
    monkeypatch.setattr(chinese_crs, "PARALLEL_MIN", 10**12)
    assert len(chinese_crs._parts(n)) == 1
    whole = convert(lon, lat)
    for a, b in zip(split, whole):
        assert np.array_equal(a, b, equal_nan=True)
        assert a.tobytes() == b.tobytes()
    assert np.isfinite(split[0]).sum() > n // 2
