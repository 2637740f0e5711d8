"""Label normalization and mapping to vocabulary codes, on built-in and real messy values."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from standards.labels import is_null, lookup_table, map_labels, normalize
from standards.pack import Concept, Vocabulary, load_pack


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("Emergency Shelter", "emergency shelter"),
        ("  EMERGENCY_SHELTER  ", "emergency shelter"),
        ("ＥＭＥＲＧＥＮＣＹ　ＳＨＥＬＴＥＲ", "emergency shelter"),  # full-width letters and space
        ("养老院 ", "养老院"),
        ("日间照料中心（社区）", "日间照料中心 社区"),  # full-width brackets fold to punctuation
        ("Other (Please detail in notes)", "other please detail in notes"),
    ],
)
def test_normalize(raw, expected):
    assert normalize(raw) == expected


@pytest.mark.parametrize("raw", [None, float("nan"), "", " ", "None", "N/A", "n/a", "-", "NULL", "无"])
def test_null_spellings(raw):
    assert is_null(raw)


@pytest.mark.parametrize("raw", ["0", "Jubilee", "none of these", "N/A bench"])
def test_values_that_are_not_null(raw):
    assert not is_null(raw)


FACILITY = load_pack().vocabulary("facility_category")


@pytest.mark.parametrize(
    "raw, crosswalk, code",
    [
        ("elderly_care_home", {}, "elderly_care_home"),  # the code itself
        ("Elderly care home", {}, "elderly_care_home"),  # English label
        ("养老院", {}, "elderly_care_home"),  # Chinese label
        ("敬老院", {}, "elderly_care_home"),  # synonym
        ("EVACUATION POINT", {}, "evacuation_point"),
        ("老人之家", {"老人之家": "elderly_care_home"}, "elderly_care_home"),  # department crosswalk
        ("Clinic", {"clinic": "hospital"}, "hospital"),  # the crosswalk wins over labels
        ("老年活动室", {}, "老年活动室"),  # unmapped values stay, so the check can report them
        ("N/A", {}, None),
    ],
)
def test_map_labels(raw, crosswalk, code):
    mapped = map_labels(pd.Series([raw], dtype="string"), lookup_table(FACILITY, crosswalk))
    assert (None if pd.isna(mapped[0]) else mapped[0]) == code


def test_bath_litter_bin_models_map_through_a_crosswalk(realworld):
    """uk_bath_banes_street_assets: bin models with 'None' as null and a misspelt 'Cheiftain'."""
    features = json.loads((realworld / "uk_bath_banes_street_assets" / "banes_litter_bins.geojson").read_text())
    values = pd.Series([f["properties"]["litter_b_1"] for f in features["features"]], dtype="string")
    vocabulary = Vocabulary(
        name="bin_model", version="1", title="Litter bin model",
        concepts=tuple(Concept(code=c, labels={"en": c.replace("_", " ").title()}) for c in
                       ("jubilee", "jubilee_streamline", "knight", "brunel", "leafield", "big_belly",
                        "chieftain", "evolution", "other")),
    )
    table = lookup_table(vocabulary, {"Cheiftain": "chieftain", "Other (Please detail in notes)": "other"})
    mapped = map_labels(values, table)
    assert mapped.isna().sum() == values.isna().sum() == 173  # JSON nulls stay null
    assert set(mapped.dropna()) <= set(vocabulary.codes)
    assert (mapped == "chieftain").sum() == 4


def test_boston_ward_formats_normalize_apart_without_a_crosswalk(realworld):
    """us_boston_311: ward written as 'Ward 3', '03', '3' — normalization alone does not merge them."""
    import csv

    with (realworld / "us_boston_311" / "boston311-100.csv").open(encoding="utf-8") as fh:
        wards = {row["ward"] for row in csv.DictReader(fh)}
    normalized = {normalize(w) for w in wards if not is_null(w)}
    assert any(w.startswith("ward ") for w in normalized) and any(w.isdigit() for w in normalized)
