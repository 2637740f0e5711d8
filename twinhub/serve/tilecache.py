"""Tiles cached per catalog version and per reader's view: in each worker's memory, and on disk for all of them.

The key is the catalog's snapshot, the collection's view as this reader may see it (its SQL, which
holds the protections and the row filter) and the tile: a new version, or a reader with other
grants, never gets another's tile. It is also the tile's ETag.

Behind a proxy spreading requests over several workers, a tile one worker made is warm for the others
(and after a restart): tiles are also kept under ``<home>/cache/tiles/<snapshot>/``, readable by the
hub's account only, written whole (a temporary file renamed). A worker that serves a newer snapshot
removes the folders of older ones; each worker writes at most ``disk_max_bytes`` per snapshot, so no
stream of distinct tile requests fills the disk.
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import shutil
import threading
from collections import OrderedDict

from twinhub.catalog.features import View


def tiles_folder(home: pathlib.Path) -> pathlib.Path:
    """Where the workers of the hub at ``home`` share their tiles."""
    return home / "cache" / "tiles"


def forget_all(home: pathlib.Path) -> None:
    """Remove every tile kept on disk (``catalog purge``: no tile may outlive the rows it was drawn from)."""
    shutil.rmtree(tiles_folder(home), ignore_errors=True)


class TileCache:
    def __init__(self, folder: pathlib.Path | None = None, max_bytes: int = 256 * 1024 * 1024,
                 disk_max_bytes: int = 1024 * 1024 * 1024):
        self.max_bytes, self.size = max_bytes, 0
        self.folder, self.disk_max_bytes = folder, disk_max_bytes
        self._tiles: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()
        self._snapshot: int | None = None  # the newest snapshot this worker wrote tiles of
        self._written = 0  # bytes this worker wrote to disk for it

    @staticmethod
    def key(snapshot: int, view: View, z: int, x: int, y: int) -> str:
        """``snapshot``: the catalog snapshot the request reads (serve/cache.py)."""
        text = f"{snapshot}\n{view.select}\n{z}/{x}/{y}"
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]

    def get(self, key: str, snapshot: int) -> bytes | None:
        with self._lock:
            body = self._tiles.get(key)
            if body is not None:
                self._tiles.move_to_end(key)
                return body
        path = self._path(key, snapshot)
        if path is None:
            return None
        try:
            body = path.read_bytes()
        except OSError:  # not made yet, or removed with its snapshot
            return None
        self._remember(key, body)
        return body

    def put(self, key: str, body: bytes, snapshot: int) -> None:
        self._remember(key, body)
        self._write(key, body, snapshot)

    def _remember(self, key: str, body: bytes) -> None:
        with self._lock:
            if key in self._tiles or len(body) > self.max_bytes:
                return
            self._tiles[key] = body
            self.size += len(body)
            while self.size > self.max_bytes:
                _, old = self._tiles.popitem(last=False)
                self.size -= len(old)

    def _path(self, key: str, snapshot: int) -> pathlib.Path | None:
        return None if self.folder is None else self.folder / str(int(snapshot)) / key[:2] / key

    def _write(self, key: str, body: bytes, snapshot: int) -> None:
        path = self._path(key, snapshot)
        if path is None:
            return
        with self._lock:
            if self._snapshot is None or snapshot > self._snapshot:
                self._snapshot, self._written = snapshot, 0
                self._drop_older(snapshot)
            if snapshot < self._snapshot or self._written + len(body) > self.disk_max_bytes:
                return
            self._written += len(body)
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            partial = path.with_name(f".{key}.{os.getpid()}.{threading.get_ident()}")
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(body)
            os.replace(partial, path)
        except OSError:  # a full or read-only disk: the tile is still served, from memory
            pass

    def _drop_older(self, snapshot: int) -> None:
        """Remove the tile folders of snapshots older than ``snapshot`` (no reader asks for them again)."""
        if self.folder is None or not self.folder.is_dir():
            return
        for old in self.folder.iterdir():
            if old.name.isdigit() and int(old.name) < snapshot:
                shutil.rmtree(old, ignore_errors=True)
