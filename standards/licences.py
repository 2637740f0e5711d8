"""Licences by SPDX identifier: the list a city publishes under (standards/licences.yaml)."""

from __future__ import annotations

import pathlib
import re
from functools import lru_cache

import yaml

LICENCES_FILE = pathlib.Path(__file__).with_name("licences.yaml")
LICENSE_REF = re.compile(r"^LicenseRef-[A-Za-z0-9.\-]+$")  # SPDX's form for terms not on its list
SPDX_BASE = "http://spdx.org/licenses/"


@lru_cache(maxsize=1)
def known() -> dict[str, dict]:
    return yaml.safe_load(LICENCES_FILE.read_text(encoding="utf-8"))


def check_licence(value: str) -> str | None:
    """None if ``value`` is a licence the hub knows (or a LicenseRef-); else what is wrong and the fix."""
    if value in known() or LICENSE_REF.match(value):
        return None
    import difflib

    close = difflib.get_close_matches(value, list(known()), n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return (f"unknown licence {value!r}: {hint}use an SPDX identifier such as {', '.join(list(known())[:4])} "
            f"(standards/licences.yaml), or LicenseRef-<name> for the city's own terms")


def licence_url(value: str, own: dict[str, str] | None = None) -> str:
    """The licence's document: SPDX's page, or the city's own URL for a LicenseRef-."""
    if LICENSE_REF.match(value):
        return (own or {}).get(value) or f"urn:spdx:{value}"
    return SPDX_BASE + value


def licence_title(value: str) -> str:
    return known().get(value, {}).get("title", value)
