"""Tiles cached per catalog version and per reader's view, in each worker's memory.

The key is the catalog's snapshot, the collection's view as this reader may see it (its SQL, which
holds the protections and the row filter) and the tile: a new version, or a reader with other
grants, never gets another's tile. It is also the tile's ETag.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict

from twinhub.catalog.features import View


class TileCache:
    def __init__(self, max_bytes: int = 256 * 1024 * 1024):
        self.max_bytes, self.size = max_bytes, 0
        self._tiles: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(snapshot: int, view: View, z: int, x: int, y: int) -> str:
        """``snapshot``: the catalog snapshot the request reads (serve/cache.py)."""
        text = f"{snapshot}\n{view.select}\n{z}/{x}/{y}"
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]

    def get(self, key: str) -> bytes | None:
        with self._lock:
            body = self._tiles.get(key)
            if body is not None:
                self._tiles.move_to_end(key)
            return body

    def put(self, key: str, body: bytes) -> None:
        with self._lock:
            if key in self._tiles or len(body) > self.max_bytes:
                return
            self._tiles[key] = body
            self.size += len(body)
            while self.size > self.max_bytes:
                _, old = self._tiles.popitem(last=False)
                self.size -= len(old)
