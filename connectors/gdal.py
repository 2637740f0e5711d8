"""GDAL, closed down to the formats the hub reads: no indirection drivers, no network file systems.

GDAL picks a driver from a file's content, and some drivers open *other* data: an OGR VRT
(``<OGRVRTDataSource>``) names any file or URL, GDALG runs a processing pipeline, SQLite's
VirtualOGR opens any data source, GPSBabel runs a program, WFS/OAPIF/Elasticsearch/... fetch
from servers. Its virtual file systems (``/vsicurl/``, ``/vsis3/``, ...) make any path a
network request that the hub's network policy never sees. So, once per process, before any
vector file is opened (:func:`harden`):

- every driver but ``DRIVERS`` (one per format, plus MEM for in-memory results) is
  deregistered, and ``GDAL_SKIP`` names them so that a later ``GDALAllRegister`` (pyogrio's
  or anyone's) skips them again;
- the network and indirection virtual file systems (``NETWORK_PREFIXES``) are removed, so
  such a path is an ordinary missing file; ``CPL_VSIL_CURL_ALLOWED_EXTENSIONS`` names no
  real extension, should one come back;
- GDAL's own HTTP client (``CPLHTTPFetch``) answers every request with an error, without a
  connection: the drivers kept still call it for links inside a file (a GeoJSON
  ``"crs": {"type": "link", "properties": {"href": "http://..."}}`` is fetched by
  ``importFromUrl``).

After opening, the driver GDAL chose must be the format's own (:func:`expected_driver`).
pyogrio does not take an allowed-drivers list, so this goes through GDAL's C API (ctypes)
on the very library pyogrio loaded. If that library cannot be found, nothing is opened.
"""

from __future__ import annotations

import ctypes
import glob
import os
import threading

import pyogrio

from twinhub.connectors.errors import SourceError

DRIVERS = {"shapefile": "ESRI Shapefile", "geojson": "GeoJSON", "gpkg": "GPKG", "fgb": "FlatGeobuf"}
KEEP = frozenset({*DRIVERS.values(), "MEM", "Memory"})
NETWORK_PREFIXES = (
    "/vsicurl/", "/vsicurl_streaming/", "/vsis3/", "/vsis3_streaming/", "/vsigs/", "/vsigs_streaming/",
    "/vsiaz/", "/vsiaz_streaming/", "/vsiadls/", "/vsioss/", "/vsioss_streaming/", "/vsiswift/",
    "/vsiswift_streaming/", "/vsiwebhdfs/", "/vsihdfs/", "/vsistdin/", "/vsisparse/", "/vsisubfile/",
    "/vsicrypt/", "/vsitar/", "/vsi7z/", "/vsirar/", "/vsigzip/", "/vsicached?", "/vsikerchunk_json_ref/",
    "/vsikerchunk_parquet_ref/",
)
_lock = threading.Lock()
_hardened: list[str] = []  # the drivers removed, once done
# CPLHTTPFetchCallbackFunc(url, options, progress, progress_arg, write, write_arg, user_data) -> CPLHTTPResult*
_FETCH = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
                          ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)
_RESULT_BYTES = 256  # more than sizeof(CPLHTTPResult); GDAL frees it with CPLHTTPDestroyResult
_ERRBUF_OFFSET = ctypes.sizeof(ctypes.c_void_p) * 2  # int nStatus (padded), char *pszContentType, char *pszErrBuf
_callbacks: list = []  # kept alive as long as the process: GDAL holds the pointer


def _refusing_fetch(gdal: ctypes.CDLL):
    """A CPLHTTPFetch that fetches nothing: a zeroed result, status 1 and an error text, made with GDAL's allocator."""
    gdal.CPLCalloc.restype = ctypes.c_void_p
    gdal.CPLCalloc.argtypes = [ctypes.c_size_t, ctypes.c_size_t]
    gdal.CPLStrdup.restype = ctypes.c_void_p
    gdal.CPLStrdup.argtypes = [ctypes.c_char_p]

    def refuse(url, *_args):
        result = gdal.CPLCalloc(1, _RESULT_BYTES)
        ctypes.c_int.from_address(result).value = 1
        ctypes.c_void_p.from_address(result + _ERRBUF_OFFSET).value = gdal.CPLStrdup(
            b"refused: the hub's GDAL fetches nothing over the network")
        return result

    return _FETCH(refuse)


def _libgdal() -> ctypes.CDLL:
    """The GDAL library pyogrio uses (already loaded: dlopen returns the same handle)."""
    with open("/proc/self/maps", encoding="utf-8") as maps:
        loaded = sorted({line.split()[-1] for line in maps if "libgdal" in line.rsplit("/", 1)[-1]})
    bundled = glob.glob(os.path.join(os.path.dirname(pyogrio.__file__), os.pardir, "pyogrio.libs", "libgdal*"))
    for path in loaded + bundled:
        try:
            return ctypes.CDLL(path)
        except OSError:
            continue
    raise SourceError("GDAL could not be locked down (its library was not found); vector files are not opened")


def harden() -> list[str]:
    """Deregister every driver but the formats' own and remove GDAL's network file systems (idempotent)."""
    with _lock:
        if _hardened:
            return _hardened
        pyogrio.list_drivers()  # makes sure pyogrio has registered its drivers first
        gdal = _libgdal()
        gdal.GDALGetDriverCount.restype = ctypes.c_int
        gdal.GDALGetDriver.restype = ctypes.c_void_p
        gdal.GDALGetDriver.argtypes = [ctypes.c_int]
        gdal.GDALGetDescription.restype = ctypes.c_char_p
        gdal.GDALGetDescription.argtypes = [ctypes.c_void_p]
        gdal.GDALDeregisterDriver.argtypes = [ctypes.c_void_p]
        gdal.CPLSetConfigOption.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
        gdal.VSIRemovePluginHandler.argtypes = [ctypes.c_char_p]
        names = [gdal.GDALGetDescription(gdal.GDALGetDriver(i)).decode() for i in range(gdal.GDALGetDriverCount())]
        removed = [n for n in names if n not in KEEP]
        gdal.CPLSetConfigOption(b"GDAL_SKIP", " ".join(removed).encode())
        gdal.CPLSetConfigOption(b"CPL_VSIL_CURL_ALLOWED_EXTENSIONS", b".twinhub-no-network")
        gdal.CPLSetConfigOption(b"GDAL_HTTP_MAX_RETRY", b"0")
        for name in removed:
            gdal.GDALGetDriverByName.restype = ctypes.c_void_p
            gdal.GDALGetDriverByName.argtypes = [ctypes.c_char_p]
            driver = gdal.GDALGetDriverByName(name.encode())
            if driver:
                gdal.GDALDeregisterDriver(driver)
        for prefix in NETWORK_PREFIXES:
            gdal.VSIRemovePluginHandler(prefix.encode())
        callback = _refusing_fetch(gdal)
        gdal.CPLHTTPSetFetchCallback.argtypes = [_FETCH, ctypes.c_void_p]
        gdal.CPLHTTPSetFetchCallback(callback, None)
        _callbacks.append(callback)
        _hardened.extend(removed or ["(none)"])
        return _hardened


def expected_driver(fmt: str, found: str | None, where: str) -> None:
    """Raise SourceError unless GDAL opened the file with the format's own driver."""
    if found != DRIVERS[fmt]:
        raise SourceError(f"{where}: refused, GDAL reads it as {found or 'an unknown format'}, not {DRIVERS[fmt]} "
                          "as source.format says; export it again in that format, or correct source.format")
