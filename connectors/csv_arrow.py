"""The fast CSV reader: pyarrow parses and decodes in C, the rows come out as pandas ``str`` columns.

pandas' parser (``pd.read_csv(dtype=str, keep_default_na=False, skipinitialspace=True)``)
stays the reference: its results define what a CSV row is. pyarrow reads the same rows
~3x faster (GBK CSV, 1e6 rows: 0.9 s against 2.3 s) and yields the same values for
well-formed files. Where it would not, it gives up (:class:`ArrowGaveUp`) and the
connector carries on with pandas from the first row not yet yielded
(:meth:`connectors.csv.CsvConnector.chunks`). It gives up on:

- a header that spans lines (a quoted name with a line break); pandas' names are kept as
  pandas makes them (``a.1`` for a second ``a``, ``Unnamed: 2`` for a blank one);
- a row with more or fewer fields than the header (pandas fills short rows with "" and
  reports long ones with its own message);
- a cell that starts with a space and then a quote (``a,  "b,c"``): pandas' skipinitialspace
  reads it as a quoted cell, pyarrow as text;
- anything else pyarrow refuses (a value larger than a block, say).

Spaces after a delimiter are skipped as pandas does; pyarrow cannot tell a quoted cell's
own leading spaces from those, so ``a," b"`` reads ``b`` here and `` b`` in pandas (every
standard field is stripped anyway; only a quarantined row's raw record shows it).

Bytes not valid in the encoding raise :class:`Undecodable`, which the connector turns
into a message that says where they are.

GBK, the encoding most Chinese departments export in, is decoded by the C library's
iconv(3) (glibc) instead of Python's codec (:class:`IconvReader`): the same characters
(every GBK code Python's codec knows is mapped alike; checked at first use), without
holding Python's lock, so the chunk being conformed meanwhile keeps its core (GBK to
UTF-8 of the 1e6-row benchmark CSV: 0.6 s of CPU under the lock, 0.33 s without it).
The one code glibc reads and Python refuses, a lone 0x80 (€), and any byte iconv
refuses hand the rest of the file to pandas with Python's codec, which then says what
it always said.
"""

from __future__ import annotations

import codecs
import ctypes
import errno
import functools
import pathlib
import platform
from collections.abc import Iterator

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

BLOCK_BYTES = 4 << 20  # pyarrow parses a block at a time, reading the next one ahead in a thread


class ArrowGaveUp(Exception):
    """pyarrow would not read the rest of the file as pandas does; the message says why."""


class Undecodable(Exception):
    """Bytes not valid UTF-8 where UTF-8 was declared or detected (the message is pyarrow's)."""


# bytes Python's GBK codec never decodes to: glibc's GBK reads a lone 0x80 as the euro sign, Python refuses it
_NOT_PYTHON_GBK = "€".encode("utf-8")
_ICONV_BLOCK = 1 << 20  # bytes of the source converted per call


@functools.cache
def _libc_iconv():
    """glibc's iconv functions (ctypes releases the GIL while they run), or None where unavailable."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.iconv_open.restype = ctypes.c_void_p
        libc.iconv_open.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
        libc.iconv.restype = ctypes.c_size_t
        libc.iconv.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_char_p), ctypes.POINTER(ctypes.c_size_t),
                               ctypes.POINTER(ctypes.c_char_p), ctypes.POINTER(ctypes.c_size_t)]
        libc.iconv_close.argtypes = [ctypes.c_void_p]
    except (OSError, AttributeError):
        return None
    return libc if _self_test(libc) else None


def _self_test(libc) -> bool:
    """Whether this iconv reads GBK as Python does: every two-byte code Python's codec knows, converted alike."""
    pairs = []
    for lead in range(0x81, 0xFF):
        for trail in range(0x40, 0xFF):
            code = bytes((lead, trail))
            try:
                code.decode("gbk")
            except UnicodeDecodeError:
                continue
            pairs.append(code)
    sample = b"\n".join(pairs) + b"\nabc,123\n"
    try:
        converter = _Converter(libc)
        try:
            out, used = converter.convert(sample)
        finally:
            converter.close()
    except (OSError, UnicodeError):
        return False
    return used == len(sample) and out == sample.decode("gbk").encode("utf-8")


class _Converter:
    """One iconv(3) conversion state, GBK -> UTF-8, with its output buffer."""

    def __init__(self, libc, block: int = _ICONV_BLOCK):
        self.libc = libc
        self.cd = libc.iconv_open(b"UTF-8", b"GBK")
        if self.cd is None or self.cd == ctypes.c_size_t(-1).value:
            raise OSError("iconv cannot convert GBK")
        self.size = block * 3 // 2 + 16  # GBK's two bytes are UTF-8's three; ASCII stays one
        self.out = ctypes.create_string_buffer(self.size)

    def convert(self, data: bytes) -> tuple[bytes, int]:
        """UTF-8 of ``data``'s complete characters (at most the block size of them), and how many bytes of
        ``data`` they took (an incomplete character at the end is left for the next call). UnicodeError
        on bytes GBK does not have."""
        in_ptr, in_left = ctypes.c_char_p(data), ctypes.c_size_t(len(data))
        out_ptr, out_left = ctypes.cast(self.out, ctypes.c_char_p), ctypes.c_size_t(self.size)
        done = self.libc.iconv(self.cd, ctypes.byref(in_ptr), ctypes.byref(in_left),
                               ctypes.byref(out_ptr), ctypes.byref(out_left))
        if done == ctypes.c_size_t(-1).value and ctypes.get_errno() not in (errno.EINVAL, errno.E2BIG):
            raise UnicodeError(f"iconv: {errno.errorcode.get(ctypes.get_errno(), ctypes.get_errno())}")
        return ctypes.string_at(self.out, self.size - out_left.value), len(data) - in_left.value

    def close(self) -> None:
        self.libc.iconv_close(self.cd)


class IconvReader:
    """A GBK file read as UTF-8 through glibc's iconv, for pyarrow (a file object with ``read``; a read
    returns at most what it was asked for, one conversion's worth).

    Raises :class:`ArrowGaveUp` at bytes iconv refuses or reads otherwise than Python's codec
    (a lone 0x80), so the caller reads on with Python's codec, which reports them as before."""

    def __init__(self, path: pathlib.Path):
        libc = _libc_iconv()
        if libc is None:
            raise ArrowGaveUp("no glibc iconv")
        self._file = open(path, "rb")  # noqa: SIM115 - closed by close()
        self._converter = _Converter(libc)
        self._carry = b""
        self.closed = False

    def read(self, size: int = -1) -> bytes:
        return b"" if self.closed else self._read(_ICONV_BLOCK if size < 0 else size)

    def _read(self, size: int) -> bytes:
        while True:
            raw = self._file.read(max(1, min(size, _ICONV_BLOCK) * 2 // 3 - len(self._carry)))
            if not raw:
                if self._carry:
                    raise ArrowGaveUp("the file ends inside a GBK character")
                return b""
            data = self._carry + raw if self._carry else raw
            try:
                out, used = self._converter.convert(data)
            except UnicodeError as exc:
                raise ArrowGaveUp(f"bytes not valid in GBK ({exc})") from None
            if b"\x80" in raw and _NOT_PYTHON_GBK in out:  # memchr first: 0x80 is a valid trail byte too
                raise ArrowGaveUp("a byte 0x80, which Python's GBK codec refuses")
            self._carry = data[used:]
            if out:
                return out

    def close(self) -> None:
        """pyarrow reads ahead in its own thread: only its reader closes this file (an iconv after
        iconv_close would crash the process), when it is done with it."""
        if not self.closed:
            self.closed = True
            self._file.close()
            self._converter.close()

    def __del__(self) -> None:
        self.close()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False


def _gbk(encoding: str) -> bool:
    try:
        return codecs.lookup(encoding).name == "gbk"
    except LookupError:
        return False


def _arrow_encoding(encoding: str) -> str:
    """pyarrow reads UTF-8 natively, skipping a BOM; other encodings go through Python's codec."""
    return "utf8" if encoding.lower().replace("_", "-") in ("utf-8-sig", "utf-8", "utf8") else encoding


def arrow_frames(path: pathlib.Path, encoding: str, delimiter: str, header: list[str],
                 rows: int) -> Iterator[pd.DataFrame]:
    """The file's records as frames of ``rows`` rows (the last may be shorter), all cells text.

    ``header``: the column names as pandas reads them (renamed where duplicate or blank), which
    the frames take; pyarrow skips the header line and reads the records after it.
    """
    if len(delimiter) != 1:
        raise ArrowGaveUp(f"pyarrow reads one-character delimiters only, not {delimiter!r}")
    if any("\n" in name or "\r" in name for name in header):
        raise ArrowGaveUp("the header spans more than one line")
    names = [f"f{i}" for i in range(len(header))]
    source = path
    if _gbk(encoding) and _libc_iconv() is not None:
        source, encoding = IconvReader(path), "utf8"
    try:
        reader = pcsv.open_csv(
            source,
            read_options=pcsv.ReadOptions(encoding=_arrow_encoding(encoding), block_size=BLOCK_BYTES,
                                          skip_rows=1, column_names=names),
            parse_options=pcsv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
            convert_options=pcsv.ConvertOptions(column_types=dict.fromkeys(names, pa.string()),
                                                strings_can_be_null=False),
        )
        pending: list[pa.RecordBatch] = []
        held = 0
        for batch in _batches(reader):
            pending.append(_skip_initial_spaces(batch))
            held += batch.num_rows
            while held >= rows:
                table = pa.Table.from_batches(pending)
                yield _frame(table.slice(0, rows), header)
                pending, held = table.slice(rows).to_batches(), held - rows
        if held:
            yield _frame(pa.Table.from_batches(pending), header)
    except pa.ArrowInvalid as exc:
        if "invalid UTF8" in str(exc) and not isinstance(source, IconvReader):
            raise Undecodable(str(exc)) from exc
        raise ArrowGaveUp(str(exc)) from exc


def _frame(table: pa.Table, header: list[str]) -> pd.DataFrame:
    """One contiguous Arrow array per column (a chunk cut across blocks would hold several pieces,
    which Arrow compute handles ~20x slower on string columns)."""
    frame = table.combine_chunks().to_pandas()
    frame.columns = header
    return frame


def _batches(reader: pcsv.CSVStreamingReader) -> Iterator[pa.RecordBatch]:
    while True:
        try:
            yield reader.read_next_batch()
        except StopIteration:
            return


def _skip_initial_spaces(batch: pa.RecordBatch) -> pa.RecordBatch:
    """pandas' skipinitialspace: spaces (not tabs) at the start of a cell are dropped."""
    columns = list(batch.columns)
    for i, column in enumerate(columns):
        if not pc.any(pc.starts_with(column, " ")).as_py():
            continue
        trimmed = pc.utf8_ltrim(column, characters=" ")
        if pc.any(pc.starts_with(trimmed, '"')).as_py():
            raise ArrowGaveUp(f"a cell of {batch.schema.names[i]!r} is quoted after spaces")
        columns[i] = trimmed
    return pa.RecordBatch.from_arrays(columns, schema=batch.schema)
