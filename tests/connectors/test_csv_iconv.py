"""GBK CSV files decoded by glibc's iconv (connectors/csv_arrow.py, IconvReader): the same rows and the
same errors as with Python's codec, which pandas (the reference reader) uses."""

from __future__ import annotations

import logging
import pathlib

import pandas as pd
import pytest

from twinhub.connectors import SourceError, open_source


def _write(tmp_path: pathlib.Path, text: str, encoding: str) -> dict:
    path = tmp_path / "t.csv"
    path.write_bytes(text.encode(encoding))
    return {"format": "csv", "path": str(path), "encoding": encoding}


def _rows(spec: dict, chunk: int) -> list[dict]:
    return [r for c in open_source(spec).chunks(chunk) for r in c.frame.to_dict("records")]


def _pandas_rows(spec: dict) -> list[dict]:
    frame = pd.concat(list(open_source(spec)._reader(rows=1000)), ignore_index=True)
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame.to_dict("records")


def _gbk_text() -> str:
    """Every character Python's GBK codec knows (two-byte codes), as names, plus plain rows."""
    chars = []
    for lead in range(0x81, 0xFF):
        for trail in range(0x40, 0xFF):
            try:
                chars.append(bytes((lead, trail)).decode("gbk"))
            except UnicodeDecodeError:
                continue
    text = "".join(c for c in chars if c not in ',"\r\n')
    names = [text[i:i + 37] for i in range(0, len(text), 37)]
    return "编号,名称\n" + "".join(f"F{i},{name}\n" for i, name in enumerate(names, 1))


def test_gbk_through_iconv_reads_as_pythons_codec(tmp_path, caplog, monkeypatch):
    """GBK goes through glibc's iconv (without Python's lock): every GBK character comes out as Python's codec
    reads it, in conversions cut anywhere (blocks of 1,001 bytes split characters), without handing over to pandas."""
    from twinhub.connectors import csv_arrow

    monkeypatch.setattr(csv_arrow, "_ICONV_BLOCK", 1001)
    assert csv_arrow._libc_iconv() is not None  # glibc: the fast path runs
    spec = _write(tmp_path, _gbk_text(), "gbk")
    with caplog.at_level(logging.INFO, logger="twinhub"):
        rows = _rows(spec, chunk=97)
    assert not [r for r in caplog.records if "read with pandas" in r.getMessage()]
    assert rows == _pandas_rows(spec) and len(rows) > 500
    reader = csv_arrow.IconvReader(pathlib.Path(spec["path"]))
    pieces = []
    while piece := reader.read(256):
        assert len(piece) <= 256
        pieces.append(piece)
    reader.close()
    assert b"".join(pieces).decode("utf-8") == pathlib.Path(spec["path"]).read_bytes().decode("gbk")


@pytest.mark.parametrize("bad", [b"\x80", b"\xff\xfe", b"\x81\x0a"], ids=["euro-0x80", "ff", "lead-newline"])
def test_bytes_gbk_lacks_fail_as_with_pythons_codec(tmp_path, bad):
    """Bytes Python's GBK codec refuses (0x80 glibc would read as the euro sign) are refused as before,
    at the same place, with the rows before them read by iconv."""
    path = tmp_path / "g.csv"
    good = "".join(f"{i},机构{i}\n" for i in range(1, 3001)).encode("gbk")
    path.write_bytes("编号,名称\n".encode("gbk") + good + b"3001,x" + bad + b"y\n")
    with pytest.raises(SourceError) as info:
        list(open_source({"format": "csv", "path": str(path), "encoding": "gbk"}).chunks(1000))
    message = str(info.value)
    assert "bytes not valid in the declared gbk encoding" in message and "data row 3001" in message

