"""Read a source's next chunk in a thread while the caller works on the current one.

Parsing (pyarrow, GDAL, database drivers, shapely) mostly runs without the GIL, so on
two cores the read of chunk n+1 overlaps the conforming and staging of chunk n. At most
``depth`` chunks wait in the queue, so memory stays bounded by a few chunks.

The source is read entirely in the one background thread (a connection a connector opens
inside ``chunks()`` is used by that thread only). An error in the reader is raised in the
caller at the chunk where it happened; a caller that stops early (an error of its own, or
``close()``) stops the reader at its next chunk.

>>> list(read_ahead(iter(range(5))))
[0, 1, 2, 3, 4]
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import TypeVar

T = TypeVar("T")
_DONE = object()


class _Failed:
    def __init__(self, error: BaseException):
        self.error = error


def read_ahead(items: Iterator[T], depth: int = 1) -> Iterator[T]:
    """``items``, produced in a background thread at most ``depth`` ahead of the caller."""
    waiting: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                waiting.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    break
            else:
                put(_DONE)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            put(_Failed(exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    reader = threading.Thread(target=produce, name="twinhub-read-ahead", daemon=True)
    reader.start()
    try:
        while True:
            item = waiting.get()
            if item is _DONE:
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item
    finally:
        stop.set()
        reader.join()
