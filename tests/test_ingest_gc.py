"""The garbage-collector setting the chunk loop of twinhub.hub.ingest runs under."""

from __future__ import annotations

import gc
import weakref

from twinhub.hub.ingest import _older_objects_frozen


class _Node:
    pass


def test_older_objects_are_frozen_during_the_loop_and_back_after():
    assert gc.get_freeze_count() == 0
    with _older_objects_frozen():
        assert gc.get_freeze_count() > 0
        node = _Node()
        node.me = node  # a cycle made during the loop is still collected
        gone = weakref.ref(node)
        del node
        gc.collect()
        assert gone() is None
    assert gc.get_freeze_count() == 0


def test_a_process_that_froze_objects_itself_keeps_them_frozen():
    gc.freeze()
    try:
        before = gc.get_freeze_count()  # frozen objects may still be freed meanwhile: the count only falls
        with _older_objects_frozen():
            assert 0 < gc.get_freeze_count() <= before  # nothing more frozen
        assert 0 < gc.get_freeze_count() <= before  # and nothing unfrozen
    finally:
        gc.unfreeze()
