"""Excel sheets as departments lay them out: title rows, merged headers, notes under the table.

Workbooks are generated here with openpyxl, cell by cell as a clerk would type them.
"""

from __future__ import annotations

import datetime as dt
import gc
import logging
import pathlib
import tracemalloc

import numpy as np
import openpyxl
import pytest

from twinhub.connectors import SourceError, open_source

HEADER = ["编号", "名称", "经度", "纬度"]
ROWS = [["A1", "静安寺站", 121.4453, 31.2238], ["A2", "人民广场", 121.4737, 31.2304], ["A3", "陆家嘴", 121.5055, 31.2397]]


def book(tmp: pathlib.Path, rows: list[list], merges: tuple[str, ...] = (), name: str = "b.xlsx") -> pathlib.Path:
    wb = openpyxl.Workbook()
    sheet = wb.active
    sheet.title = "数据"
    for row in rows:
        sheet.append(row)
    for cells in merges:
        sheet.merge_cells(cells)
    wb.save(tmp / name)
    return tmp / name


def read(path: pathlib.Path, rows: int = 2, **keys) -> tuple[list[list], list[int], object]:
    connector = open_source({"format": "xlsx", "path": str(path), "x": "经度", "y": "纬度", **keys})
    chunks = list(connector.chunks(rows))
    values = [r for c in chunks for r in c.frame.values.tolist()]
    numbers = [int(n) for c in chunks for n in c.source_rows]
    return values, numbers, connector


TITLE = ["上海市应急避难场所一览表", None, None, None]
NOTE = ["注：数据截至2023年12月31日", None, None, None]
SOURCE_NOTE = ["数据来源：市应急管理局", None, None, None]

# (id, sheet rows, keys, values read, spreadsheet rows they came from, notes left out)
LAYOUTS = [
    ("plain", [HEADER, *ROWS], {}, [[*map(str, r)] for r in ROWS], [2, 3, 4], []),
    ("title-row-above-the-header", [TITLE, HEADER, *ROWS], {"header_row": 2}, [[*map(str, r)] for r in ROWS], [3, 4, 5], []),
    ("blank-rows-skipped", [HEADER, ROWS[0], [None] * 4, ROWS[1], ["", " ", None, None], ROWS[2]], {}, [[*map(str, r)] for r in ROWS], [2, 4, 6], []),
    ("trailing-notes-dropped", [HEADER, *ROWS, [None] * 4, NOTE, SOURCE_NOTE], {}, [[*map(str, r)] for r in ROWS], [2, 3, 4], [6, 7]),
    (
        "trailing-notes-kept",
        [HEADER, *ROWS, NOTE],
        {"trailing_notes": "keep"},
        [[*map(str, r)] for r in ROWS] + [[NOTE[0], "", "", ""]],
        [2, 3, 4, 5],
        [],
    ),
    (
        "note-like-row-inside-the-table-is-data",
        [HEADER, ROWS[0], ["A9", None, None, None], *ROWS[1:]],
        {},
        [[*map(str, ROWS[0])], ["A9", "", "", ""], *[[*map(str, r)] for r in ROWS[1:]]],
        [2, 3, 4, 5],
        [],
    ),
    (
        "empty-unnamed-column-ignored",
        [[*HEADER, None, None], *[[*r, None, " "] for r in ROWS]],
        {},
        [[*map(str, r)] for r in ROWS],
        [2, 3, 4],
        [],
    ),
    (
        "cells-as-a-spreadsheet-shows-them",
        [[*HEADER, "开放日期", "容量"], ["A1", "x", 121.5, 31.2, dt.datetime(2024, 5, 1), 1200.0]],
        {},
        [["A1", "x", "121.5", "31.2", "2024-05-01 00:00:00", "1200"]],
        [2],
        [],
    ),
]


@pytest.mark.parametrize(("rows", "keys", "values", "numbers", "notes"), [pytest.param(*c[1:], id=c[0]) for c in LAYOUTS])
def test_sheet_layouts_read_as_documented(tmp_path, caplog, rows, keys, values, numbers, notes):
    with caplog.at_level(logging.WARNING, logger="twinhub.connectors"):
        got, got_numbers, connector = read(book(tmp_path, rows), **keys)
    assert got == values and got_numbers == numbers
    assert [n for n, _ in connector.dropped_notes] == notes
    if notes:
        assert f"left out {len(notes)} trailing note row(s)" in caplog.text and "row 6: '注：数据截至2023年12月31日'" in caplog.text


def test_geometry_of_a_streamed_sheet_is_each_rows_point(tmp_path):
    connector = open_source({"format": "xlsx", "path": str(book(tmp_path, [TITLE, HEADER, *ROWS])), "header_row": 2, "x": "经度", "y": "纬度"})
    geometry = np.concatenate([c.geometry for c in connector.chunks(2)])
    assert [(g.x, g.y) for g in geometry] == [(r[2], r[3]) for r in ROWS]


# (id, sheet rows, merged ranges, keys, texts the error must contain)
BAD_LAYOUTS = [
    (
        "merged-header-cell",
        [["编号", "名称", "位置", None], ["", "", "经度", "纬度"], ROWS[0]],
        ("C1:D1",),
        {},
        ["sheet 0", "cell D2 holds '纬度'", "no name in header row 1", "merged header cell", "source.header_row"],
    ),
    ("value-beyond-the-header", [HEADER, [*ROWS[0], "stray"]], (), {}, ["cell E2 holds 'stray'", "no name in header row 1"]),
    ("same-name-twice", [["编号", "名称", "名称", "经度", "纬度"], ["A1", "x", "y", 121.4, 31.2]], (), {}, ["names '名称' twice (B1 and C1)", "rename one"]),
    ("header-row-empty", [HEADER, *ROWS], (), {"header_row": 9}, ["header row 9 is empty", "source.header_row"]),
    ("header-only", [HEADER, [None] * 4, NOTE], (), {}, ["no data rows below header row 1"]),
]


@pytest.mark.parametrize(("rows", "merges", "keys", "says"), [pytest.param(*c[1:], id=c[0]) for c in BAD_LAYOUTS])
def test_layouts_that_cannot_be_read_safely_are_reported_with_the_cell(tmp_path, rows, merges, keys, says):
    path = book(tmp_path, rows, merges)
    with pytest.raises(SourceError) as info:
        read(path, **keys)
    for text in says:
        assert text in str(info.value)


def test_merged_header_is_caught_at_registration_when_the_second_row_names_the_columns(tmp_path):
    """The fix the message suggests works: header_row 2 names every column."""
    path = book(tmp_path, [["编号", "名称", "位置", None], ["编号", "名称", "经度", "纬度"], ROWS[0]], ("C1:D1",))
    values, numbers, _ = read(path, header_row=2)
    assert values == [[*map(str, ROWS[0])]] and numbers == [3]


def peak_memory_reading(tmp: pathlib.Path, rows: int) -> int:
    """Peak bytes allocated while a sheet of ``rows`` rows is read in chunks of 200."""
    wb = openpyxl.Workbook(write_only=True)
    sheet = wb.create_sheet("数据")
    sheet.append(HEADER)
    for i in range(rows):
        sheet.append([i, f"名称{i % 50}" * 5, 121.0 + i / 1e5, 31.0 + i / 1e5])  # few distinct texts (see the test)
    wb.save(tmp / f"big{rows}.xlsx")
    connector = open_source({"format": "xlsx", "path": str(tmp / f"big{rows}.xlsx"), "x": "经度", "y": "纬度"})
    gc.collect()
    tracemalloc.start()
    read = sum(len(chunk.frame) for chunk in connector.chunks(200))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert read == rows
    return peak


@pytest.mark.slow
def test_memory_grows_by_far_less_than_the_rows_while_a_sheet_streams(tmp_path):
    """Four times the rows: the reader holds a chunk, not the sheet.

    What remains per row is openpyxl's parsed (and cleared) XML element, about 85 bytes
    (measured: 100-160 with garbage awaiting collection), against about 400 when the whole
    sheet is read into one frame (pandas.read_excel). An xlsx also keeps each distinct text
    once in a shared-strings table that openpyxl loads whole; the sheet here repeats its
    texts, as a sheet of categories and districts does (docs/connectors.md).
    """
    small, large = peak_memory_reading(tmp_path, 1_000), peak_memory_reading(tmp_path, 4_000)
    assert (large - small) / 3_000 < 250, (small, large)
