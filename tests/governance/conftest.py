"""Fixtures shared by the governance tests."""

from __future__ import annotations

import pytest

from .access_hub import KEY


@pytest.fixture(scope="module")
def pseudonym_key():
    """TWINHUB_PSEUDONYM_KEY set for a whole module (its hub is built and queried with it)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TWINHUB_PSEUDONYM_KEY", KEY)
        yield KEY
