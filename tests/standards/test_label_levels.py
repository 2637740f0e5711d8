"""Hierarchical and multi-valued label cells (standards/labels.py ``pick_levels``), table-driven.

Each case: the cells, how they are read, and the value each cell gives to the matcher; the expected
values are written out by hand from the cells (the oracle), with the counts of multi-valued cells and
of cells whose values map to different codes.
"""

from __future__ import annotations

import pyarrow as pa
import pytest

from twinhub.standards.labels import Levels, LevelStats, Matcher, pick_levels
from twinhub.standards.pack import load_pack

H, C, P = "医疗保健服务;综合医院;三级甲等医院", "医疗保健服务;诊所;诊所", "医疗保健服务;宠物医院;宠物医院"


@pytest.fixture(scope="module")
def matcher() -> Matcher:
    vocabulary = load_pack().vocabulary("facility_category")
    return Matcher(vocabulary, inline={"综合医院": "hospital", "诊所": "clinic", "三级甲等医院": "hospital"})


CASES = [
    # cells, split, separator, level, picked, multi-valued, conflicting
    ([H, C, None, ""], None, ";", 2, ["综合医院", "诊所", None, None], 0, 0),
    ([H, C], None, ";", -1, ["三级甲等医院", "诊所"], 0, 0),
    ([H, C], None, ";", 1, ["医疗保健服务", "医疗保健服务"], 0, 0),  # level 1 maps to nothing: kept as written
    (["医疗保健服务", H], None, ";", 3, [None, "三级甲等医院"], 0, 0),  # a value without that level is blank
    ([f"{H}|{C}"], "|", ";", 2, ["综合医院"], 1, 1),  # two codes: the first in the cell wins
    ([f"{P}|{C}"], "|", ";", 2, ["诊所"], 1, 0),  # the first value maps to nothing: the next that maps
    ([f"{P}|{P}"], "|", ";", 2, ["宠物医院"], 1, 0),  # none maps: the first value, reported as unmapped
    ([f"{C}|{C}", f" | {H} "], "|", ";", 2, ["诊所", "综合医院"], 1, 0),  # blank values do not count
    (["诊所;综合医院"], ";", None, None, ["诊所"], 1, 1),  # multi-valued without a hierarchy
    ([None, "", "|"], "|", ";", 2, [None, None, None], 0, 0),
]


@pytest.mark.parametrize(("cells", "split", "separator", "level", "picked", "multi", "conflicting"), CASES)
def test_pick_levels(matcher, cells, split, separator, level, picked, multi, conflicting):
    stats = LevelStats()
    out = pick_levels(pa.array(cells, pa.string()), Levels(split, separator, level), matcher, stats)
    assert out.to_pylist() == picked
    assert (stats.multi_valued, stats.conflicting) == (multi, conflicting)
    assert stats.cells == sum(v is not None for v in picked)


def test_counts_add_up_over_chunks_and_name_conflicting_cells(matcher):
    stats = LevelStats()
    for chunk in ([f"{H}|{C}", C], [f"{C}|{H}", f"{P}|{C}"]):
        pick_levels(pa.chunked_array([pa.array(chunk)]), Levels("|", ";", 2), matcher, stats)
    assert (stats.cells, stats.multi_valued, stats.conflicting) == (4, 3, 2)
    assert stats.examples == {f"{H}|{C}": ["hospital", "clinic"], f"{C}|{H}": ["clinic", "hospital"]}


def test_a_large_column_is_read_once_per_distinct_value(matcher, monkeypatch):
    seen = []
    part = Levels.part
    monkeypatch.setattr(Levels, "part", lambda self, value: seen.append(value) or part(self, value))
    cells = pa.array([f"{H}|{C}", C, H] * 100_000)
    out = pick_levels(cells, Levels("|", ";", 2), matcher, LevelStats())
    assert out.to_pylist()[:3] == ["综合医院", "诊所", "综合医院"] and len(out) == 300_000
    assert sorted(seen) == sorted({H, C})  # two distinct values, each read once
