"""The fast CSV reader (pyarrow) reads what pandas reads, and hands over to pandas where it would not.

pandas (``CsvConnector._reader``) is the reference: every case compares the connector's
rows with pandas' own reading of the same file.
"""

from __future__ import annotations

import logging
import pathlib
import threading

import pandas as pd
import pytest

from twinhub.connectors import SourceError, open_source
from twinhub.connectors.readahead import read_ahead

REALWORLD = pathlib.Path(__file__).resolve().parents[2].parent / "shared" / "data" / "realworld"


def _rows(spec: dict, chunk: int) -> tuple[list[dict], list[int]]:
    connector = open_source(spec)
    chunks = list(connector.chunks(chunk))
    rows = [r for c in chunks for r in c.frame.to_dict("records")]
    numbers = [int(n) for c in chunks for n in c.source_rows]
    return rows, numbers


def _pandas_rows(spec: dict) -> list[dict]:
    connector = open_source(spec)
    frame = pd.concat(list(connector._reader(rows=1000)), ignore_index=True)
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame.to_dict("records")


REAL_FILES = [
    ("uk_adur_public_toilets/adur-public-toilets.csv", None),
    ("us_boston_311/boston311-100.csv", None),
    ("ca_toronto_street_trees/street-tree-data-EY.csv", None),
    ("tw_newtaipei_banqiao_parking/BanqiaoPublicParkingSpaceInfo.csv", None),
    ("cn_admin_division_codes/areas.csv", None),
]


@pytest.mark.parametrize(("name", "encoding"), REAL_FILES)
def test_real_files_read_as_pandas_reads_them(name, encoding, caplog):
    spec = {"format": "csv", "path": str(REALWORLD / name), **({"encoding": encoding} if encoding else {})}
    with caplog.at_level(logging.INFO, logger="twinhub"):
        rows, numbers = _rows(spec, chunk=37)
    assert not [r for r in caplog.records if "read with pandas" in r.getMessage()]  # pyarrow read them all
    want = _pandas_rows(spec)
    assert rows == want
    assert numbers == list(range(1, len(want) + 1))


def _write(tmp_path: pathlib.Path, text: str, encoding: str = "utf-8") -> dict:
    path = tmp_path / "t.csv"
    path.write_bytes(text.encode(encoding))
    return {"format": "csv", "path": str(path), "encoding": encoding}


def _many(n: int, start: int = 1) -> str:
    return "".join(f"{i},名称{i},{i * 0.5}\n" for i in range(start, start + n))


# (id, file text): each reads exactly as pandas reads it, including when pyarrow gives up half-way
CASES = [
    ("plain", "id,name,v\n" + _many(250)),
    ("crlf-and-blank-lines", "id,name,v\r\n1,a,2\r\n\r\n2,b,3\r\n"),
    ("quoted-newline-and-quotes", 'id,name,v\n1,"two\nlines",1\n2,"say ""hi""",2\n' + _many(200, 3)),
    ("spaces-after-delimiters", "id, name, v\n1, a, 2\n2,  b,3\n"),
    ("short-row-deep-in-the-file", "id,name,v\n" + _many(300) + "301,only two\n" + _many(50, 302)),
    ("long-row-deep-in-the-file-is-refused-by-pandas", "id,name,v\n" + _many(300) + "301,a,b,c\n"),
    ("quoted-after-spaces-deep-in-the-file", "id,name,v\n" + _many(300) + '301,  "a,b",1\n' + _many(20, 302)),
    ("duplicate-and-blank-header-names", "id,id,,v\n1,2,3,4\n"),
    ("empty-cells-and-NA-text", 'id,name,v\n1,,NA\n2,"",null\n'),
    ("tab-inside-cell-is-kept", "id,name,v\n1,\ta,2\n"),
]


@pytest.mark.parametrize("text", [pytest.param(t, id=i) for i, t in CASES])
def test_every_row_reads_as_pandas_reads_it(tmp_path, text):
    spec = _write(tmp_path, text)
    try:
        want = _pandas_rows(spec)
    except pd.errors.ParserError:
        with pytest.raises(SourceError, match="t.csv.*Expected 3 fields in line 302, saw 4"):
            _rows(spec, chunk=40)
        return
    rows, numbers = _rows(spec, chunk=40)
    assert rows == want
    assert numbers == list(range(1, len(want) + 1))


def test_pandas_takes_over_from_the_first_row_not_yet_read(tmp_path, caplog):
    spec = _write(tmp_path, "id,name,v\n" + _many(300) + "301,only two\n" + _many(50, 302))
    with caplog.at_level(logging.INFO, logger="twinhub"):
        rows, _ = _rows(spec, chunk=40)
    assert [r["id"] for r in rows] == [str(i) for i in range(1, 352)]
    assert rows[300] == {"id": "301", "name": "only two", "v": ""}
    handed_over = [r.getMessage() for r in caplog.records if "read with pandas" in r.getMessage()]
    assert len(handed_over) == 1 and "Expected 3 columns, got 2" in handed_over[0]


def test_gbk_file_reads_in_exact_chunks(tmp_path):
    spec = _write(tmp_path, "编号,名称,类型\n" + "".join(f"F{i},机构{i},养老院\n" for i in range(1, 1001)), "gbk")
    chunks = list(open_source(spec).chunks(300))
    assert [len(c.frame) for c in chunks] == [300, 300, 300, 100]
    assert chunks[-1].frame.iloc[-1].tolist() == ["F1000", "机构1000", "养老院"]
    assert chunks[-1].source_rows[-1] == 1000


def test_bad_utf8_far_down_is_located_as_before(tmp_path):
    path = tmp_path / "f.csv"
    path.write_bytes(b"id,name\n" + b"".join(b"%d,x\n" % i for i in range(1, 20001)) + b"20001,caf\xe9\n")
    with pytest.raises(SourceError) as info:
        list(open_source({"format": "csv", "path": str(path)}).chunks(1000))
    assert "detected utf-8-sig" in str(info.value) and "data row 20001" in str(info.value)


def test_x_y_cells_arrow_refuses_give_none_like_blank_ones(tmp_path):
    spec = _write(tmp_path, "id,x,y\n1, 121.5 ,31.2\n2,N/A,31.2\n3,,31.2\n4,1e2,-0\n")
    chunk = next(open_source({**spec, "x": "x", "y": "y"}).chunks(10))
    assert [None if g is None else (g.x, g.y) for g in chunk.geometry] == [(121.5, 31.2), None, None, (100.0, -0.0)]


def test_read_ahead_raises_the_readers_error_at_its_chunk():
    def chunks():
        yield 1
        yield 2
        raise SourceError("cut off")

    got = []
    with pytest.raises(SourceError, match="cut off"):
        for item in read_ahead(chunks()):
            got.append(item)
    assert got == [1, 2]


def test_read_ahead_stops_the_reader_when_the_caller_stops():
    produced = []
    closed = threading.Event()

    def chunks():
        try:
            for i in range(1000):
                produced.append(i)
                yield i
        finally:
            closed.set()

    for item in read_ahead(chunks(), depth=1):
        if item == 3:
            break
    assert closed.wait(5)
    assert len(produced) <= 6  # the reader stayed at most a couple of chunks ahead


def test_frames_cut_across_blocks_are_contiguous_and_map_labels(tmp_path, monkeypatch):
    """A chunk cut from several pyarrow blocks comes out as one Arrow array per column (Arrow
    compute on string pieces is ~20x slower); label mapping also takes text in pieces."""
    import pyarrow as pa

    from twinhub.connectors import csv_arrow
    from twinhub.standards.labels import _mapped

    monkeypatch.setattr(csv_arrow, "BLOCK_BYTES", 256)
    spec = _write(tmp_path, "id,kind\n" + "".join(f"{i},{'abc'[i % 3]}\n" for i in range(1, 301)))
    frame = next(open_source(spec).chunks(120)).frame
    assert len(frame) == 120 and isinstance(pa.array(frame["kind"].array), pa.Array)  # not a ChunkedArray
    codes = {"a": "A", "b": None, "c": "C"}
    want = [codes[v] or pd.NA for v in frame["kind"].astype(object)]
    assert _mapped(frame["kind"], codes).tolist() == want
    pieces = pa.chunked_array([pa.array(frame["kind"].astype(object)[:50]), pa.array(frame["kind"].astype(object)[50:])])
    in_pieces = pd.Series(pd.arrays.ArrowStringArray(pieces.cast(pa.large_string())))
    assert _mapped(in_pieces, codes).tolist() == want


def test_closing_read_ahead_stops_its_reader_at_once():
    """ingest closes the read-ahead when a chunk fails: the reader and its source stop then, not at collection."""
    closed = threading.Event()

    def chunks():
        try:
            while True:
                yield 1
        finally:
            closed.set()

    ahead = read_ahead(chunks())
    next(ahead)
    kept = ahead  # a traceback could keep the generator alive: close() must not wait for collection
    kept.close()
    assert closed.wait(5)
    assert not [t for t in threading.enumerate() if t.name == "twinhub-read-ahead"]
