"""A Shapefile whose DBF has no .cpg and no code-page byte: its text is detected as a CSV's is.

The files are written through GDAL from known truths (pyogrio with ``encoding=``), then
stripped of their .cpg and code-page byte (offset 29 of the .dbf), as old exports are.
"""

from __future__ import annotations

import pathlib
import zipfile

import geopandas as gpd
import pyogrio
import pytest
import shapely

from twinhub.connectors import SourceError, open_source
from twinhub.connectors.vector import LDID_OFFSET

# Shanghai's districts of 2017, merged ones included (闸北区 into 静安区 in 2015, 卢湾区 into 黄浦区
# in 2011, 南汇区 into 浦东新区 in 2009), repeated so that they span several chunks
SHANGHAI = [
    ("310101", "黄浦区"), ("310103", "卢湾区"), ("310104", "徐汇区"), ("310105", "长宁区"),
    ("310106", "静安区"), ("310107", "普陀区"), ("310108", "闸北区"), ("310109", "虹口区"),
    ("310110", "杨浦区"), ("310112", "闵行区"), ("310113", "宝山区"), ("310114", "嘉定区"),
    ("310115", "浦东新区"), ("310119", "南汇区"), ("310120", "奉贤区"), ("310151", "崇明区"),
]
TAIPEI = [("65000010", "板橋區"), ("63000010", "松山區"), ("63000020", "信義區"), ("63000030", "大安區"),
          ("63000040", "中山區"), ("63000050", "中正區"), ("63000060", "大同區"), ("63000070", "萬華區"),
          ("63000080", "文山區"), ("63000090", "南港區"), ("63000100", "內湖區"), ("63000110", "士林區")]
ROWS = 300


def note(name: str, i: int) -> str:
    """A second text column: the name and a row number, in Chinese where the name is."""
    return f"{name}第{i}號" if name[-1] in "区區" else f"{name} Nr. {i}"


def uncoded_shapefile(folder: pathlib.Path, records: list[tuple[str, str]], encoding: str,
                      rows: int = ROWS) -> pathlib.Path:
    """A point Shapefile of ``rows`` rows cycling through ``records`` (code, name), its text in
    ``encoding``, with no .cpg and a zero code-page byte."""
    folder.mkdir()
    count = rows
    rows = [records[i % len(records)] for i in range(count)]
    frame = gpd.GeoDataFrame(
        {"code": [c for c, _ in rows], "name": [n for _, n in rows], "note": [note(n, i) for i, (_, n) in enumerate(rows)]},
        geometry=[shapely.Point(121.2 + i * 1e-5, 31.1) for i in range(count)], crs="EPSG:4326",
    )
    shp = folder / "districts.shp"
    pyogrio.write_dataframe(frame, shp, encoding=encoding)
    (folder / "districts.cpg").unlink(missing_ok=True)
    dbf = bytearray((folder / "districts.dbf").read_bytes())
    dbf[LDID_OFFSET] = 0
    (folder / "districts.dbf").write_bytes(bytes(dbf))
    return shp


def as_zip(shp: pathlib.Path) -> pathlib.Path:
    archive = shp.parent.parent / "districts.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for part in shp.parent.iterdir():
            zf.write(part, part.name)
    return archive


def read_text(path: pathlib.Path, **source) -> list[tuple[str, str, str]]:
    chunks = list(open_source({"format": "shapefile", "path": str(path), **source}).chunks(64))
    return [row for c in chunks for row in zip(c.frame["code"], c.frame["name"], c.frame["note"])]


def truth(records: list[tuple[str, str]]) -> list[tuple[str, str, str]]:
    return [(records[i % len(records)][0], records[i % len(records)][1], note(records[i % len(records)][1], i))
            for i in range(ROWS)]


@pytest.mark.parametrize("encoding, records", [("GBK", SHANGHAI), ("UTF-8", SHANGHAI), ("BIG5", TAIPEI)])
@pytest.mark.parametrize("given_as", ["shp", "folder", "zip"])
def test_text_of_a_dbf_without_code_page_is_detected_and_every_row_reads_right(tmp_path, encoding, records, given_as):
    shp = uncoded_shapefile(tmp_path / "shape", records, encoding)
    assert not (shp.parent / "districts.cpg").exists() and shp.with_suffix(".dbf").read_bytes()[LDID_OFFSET] == 0
    path = {"shp": shp, "folder": shp.parent, "zip": as_zip(shp) if given_as == "zip" else None}[given_as]
    assert read_text(path) == truth(records)


def test_merged_districts_come_back_by_name(tmp_path):
    rows = read_text(uncoded_shapefile(tmp_path / "shape", SHANGHAI, "GBK"))
    names = {name for _, name, _ in rows}
    assert {"闸北区", "卢湾区", "南汇区", "静安区"} <= names
    assert sum(name == "闸北区" for _, name, _ in rows) == sum(1 for i in range(ROWS) if i % len(SHANGHAI) == 6)


def test_a_cpg_still_decides(tmp_path):
    """GDAL's own reading is kept when the file says its encoding."""
    shp = uncoded_shapefile(tmp_path / "shape", SHANGHAI, "GBK")
    (shp.parent / "districts.cpg").write_text("GBK")
    assert read_text(shp) == truth(SHANGHAI)


def test_bytes_that_fit_no_candidate_name_source_encoding_and_declaring_it_fixes_them(tmp_path):
    # Windows-1252: "€" is 0x80, which no candidate reads (Latin-1 would make it a control character)
    records = [("A1", "Café € 5"), ("A2", "Straße"), ("A3", "“Quoted”")]
    shp = uncoded_shapefile(tmp_path / "shape", records, "CP1252")
    with pytest.raises(SourceError) as caught:
        read_text(shp)
    message = str(caught.value)
    assert "source.encoding" in message and str(shp) in message and "cpg" in message
    assert read_text(shp, encoding="cp1252") == truth(records)


def test_a_wrong_declared_encoding_is_a_source_error_naming_source_encoding(tmp_path):
    shp = uncoded_shapefile(tmp_path / "shape", SHANGHAI, "GBK")
    with pytest.raises(SourceError) as caught:
        read_text(shp, encoding="utf-8")
    message = str(caught.value)
    assert "source.encoding" in message and "'utf-8'" in message and str(shp) in message


def test_text_far_into_the_file_decides_the_encoding(tmp_path):
    """The whole DBF is read for detection: ASCII for its first 64 KiB and more, Chinese only after."""
    records = [(f"{i:06d}", f"Station {i}") for i in range(4000)] + SHANGHAI
    shp = uncoded_shapefile(tmp_path / "shape", records, "GBK", rows=len(records))
    assert shp.with_suffix(".dbf").read_bytes().index("闸北区".encode("gbk")) > 2 * 64 * 1024
    assert [(code, name) for code, name, _ in read_text(shp)] == records


def test_one_undecodable_record_at_the_end_is_a_clear_error_not_a_dropped_character(tmp_path):
    """GDAL drops bytes its iconv cannot read (warning once per process); the whole-file detection
    refuses them first, naming source.encoding."""
    records = SHANGHAI * 200 + [("X1", "Preis 5X")]
    shp = uncoded_shapefile(tmp_path / "shape", records, "GBK", rows=len(records))
    dbf = bytearray(shp.with_suffix(".dbf").read_bytes())
    dbf[dbf.rindex(b"Preis 5X") + 7] = 0x80  # Windows-1252's euro sign: no candidate reads it
    shp.with_suffix(".dbf").write_bytes(bytes(dbf))
    with pytest.raises(SourceError) as caught:
        read_text(shp)
    assert "source.encoding" in str(caught.value) and str(shp) in str(caught.value)


def test_text_ascii_at_first_then_undecodable_in_a_declared_encoding_names_source_encoding(tmp_path):
    records = [(f"{i:06d}", f"Station {i}") for i in range(4000)] + SHANGHAI
    shp = uncoded_shapefile(tmp_path / "shape", records, "GBK", rows=len(records))
    with pytest.raises(SourceError) as caught:
        read_text(shp, encoding="utf-8")
    message = str(caught.value)
    assert "source.encoding" in message and "'utf-8'" in message and "feature" in message
