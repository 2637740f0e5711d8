"""Label normalization and mapping to vocabulary codes, on built-in and real messy values."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from twinhub.standards.labels import is_null, lookup_table, map_labels, normalize
from twinhub.standards.pack import Concept, Vocabulary, load_pack


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


# --------------------------------------------------------------------------- matching, coverage, suggestions

from collections import Counter  # noqa: E402

from twinhub.standards.labels import Matcher, suggest  # noqa: E402
from twinhub.standards.pack import Crosswalk, CrosswalkEntry  # noqa: E402

PACK = load_pack()
DISTRICTS = PACK.vocabulary("admin_division")
HISTORY = PACK.crosswalks["shanghai_district_history"]


@pytest.mark.parametrize(
    ("raw", "code", "how", "match", "outdated"),
    [
        ("静安区", "310106", "label", "exact", None),
        ("静安", "310106", "synonym", "exact", None),
        ("Jing'an District", "310106", "label", "exact", None),
        ("JINGAN", "310106", "synonym", "exact", None),
        ("310106", "310106", "code", "exact", None),
        ("闸北区", "310106", "label", "exact", "310108"),  # merged into 静安区 in 2015
        ("闸北", "310106", "synonym", "exact", "310108"),
        ("卢湾区", "310101", "label", "exact", "310103"),
        ("崇明县", "310151", "label", "exact", "310230"),
        ("崇明", "310151", "synonym", "exact", None),  # the current 崇明区 claims the shared short name
        ("南市区", "310101", "crosswalk", "broader", None),  # only in the shared crosswalk
        ("老闸北", "310106", "manifest", "exact", None),  # the department's inline value
        ("长宁路", None, None, None, None),
    ],
)
def test_how_each_district_value_matches(raw, code, how, match, outdated):
    matcher = Matcher(DISTRICTS, [HISTORY], {"老闸北": "310106"})
    found = matcher.lookup(raw)
    got = (found.code, found.how, found.match, found.outdated) if found else None
    assert got == ((code, how, match, outdated) if code else None)


def test_outdated_values_are_mapped_counted_and_noted():
    values = pd.Series(["闸北区", "闸北区", "静安区", "闸北", None, "N/A", "长宁路"], dtype="string")
    codes, stats = Matcher(DISTRICTS).map(values)
    assert codes.tolist()[:4] == ["310106"] * 4 and pd.isna(codes[4]) and pd.isna(codes[5])
    assert codes[6] == "长宁路"  # left as written for the quarantine reason
    record = stats.as_dict()
    assert (record["values"], record["mapped"], record["unmapped"]) == (5, 4, 1)
    assert record["share_mapped"] == 0.8
    assert record["outdated"]["闸北区"] == {"code": "310108", "replaced_by": "310106", "rows": 2,
                                         "note": "merged into 静安区 (Jing'an District) in 2015"}
    assert record["outdated"]["闸北"]["rows"] == 1 and record["unmapped_values"] == {"长宁路": 1}
    assert "310108" not in DISTRICTS.codes  # data never carries the outdated code


STREET_ASSETS = PACK.vocabulary("street_asset_type")
FACILITIES = PACK.vocabulary("facility_category")


@pytest.mark.parametrize(
    ("raw", "vocabulary", "crosswalks", "top"),
    [
        ("社区养老院", FACILITIES, [], "elderly_care_home"),  # contains 养老院
        ("Elderly care homes", FACILITIES, [], "elderly_care_home"),
        ("EVACUATION PT", FACILITIES, [], "evacuation_point"),
        ("排涝闸站", FACILITIES, [PACK.crosswalks["facility_category_common"]], "pumping_station"),  # like 排水泵站
        ("SEATS", STREET_ASSETS, [], "bench"),  # Bath's park seats
        ("BENCHES", STREET_ASSETS, [], "bench"),
        ("Sports hall", FACILITIES, [], None),  # nothing alike: no suggestion rather than a wrong one
        ("静安寺区", DISTRICTS, [], "310106"),
    ],
)
def test_suggestions(raw, vocabulary, crosswalks, top):
    suggestions = suggest(raw, vocabulary, crosswalks)
    assert (suggestions[0].code if suggestions else None) == top
    assert all(0 < s.score <= 1 for s in suggestions)
    assert [s.score for s in suggestions] == sorted((s.score for s in suggestions), reverse=True)


GENERA = ("maple", "spruce", "pine", "oak", "birch", "elm", "linden", "cherry", "apple", "lilac", "ash", "fir")


def test_toronto_common_names_suggest_their_genus(realworld):
    """ca_toronto_street_trees: 'Maple, Norway Crimson King', 'Pine scots' (comma lost), 'None' for null."""
    import csv

    with (realworld / "ca_toronto_street_trees" / "street-tree-data-EY.csv").open(encoding="utf-8") as fh:
        names = Counter(row["COMMON_NAME"] for row in csv.DictReader(fh))
    genus = Vocabulary("tree_genus", "1", "Genus",
                       tuple(Concept(g, {"en": g.title()}) for g in GENERA))
    checked = 0
    for name in names:
        first = normalize(name).split(" ")[0] if not is_null(name) else None
        if first in GENERA:
            assert suggest(name, genus)[0].code == first, name
            checked += 1
    assert checked > 60  # the messy names are many
    assert normalize("Pine scots") == normalize("Pine, scots")
    codes, stats = Matcher(genus).map(pd.Series(list(names.elements()), dtype="string"))
    assert stats.values == sum(n for v, n in names.items() if not is_null(v))  # 'None' is not a value
    assert stats.mapped == sum(n for v, n in names.items() if normalize(v) in GENERA)  # only bare genus names


def test_bath_grit_bin_colour_codes_and_null_spellings(realworld):
    """uk_bath_banes_street_assets: grit bin colours coded YE/BL/GR, null written 'NA' or None."""
    features = json.loads((realworld / "uk_bath_banes_street_assets" / "banes_grit_bins.geojson").read_text())
    values = pd.Series([f["properties"]["attrib_val"] for f in features["features"]], dtype="string")
    colours = Vocabulary("colour", "1", "Colour", (
        Concept("yellow", {"en": "Yellow"}, ("YE",)), Concept("blue", {"en": "Blue"}, ("BL",)),
        Concept("green", {"en": "Green"}, ("GR",))))
    codes, stats = Matcher(colours).map(values)
    assert stats.values == 431 and stats.mapped == 431 and stats.by_how == {"synonym": 431}
    assert codes.isna().sum() == 11  # 7 'NA' + 4 JSON null
    assert dict(codes.value_counts()) == {"yellow": 198, "blue": 166, "green": 67}


def test_bath_seats_map_through_a_shared_crosswalk(realworld):
    features = json.loads(
        (realworld / "uk_bath_banes_street_assets" / "banes_park_seats_and_benches.geojson").read_text())
    values = pd.Series([f["properties"]["type"] for f in features["features"]], dtype="string")
    crosswalk = Crosswalk("bath_furniture", "1.0.0", "street_asset_type", "", (
        CrosswalkEntry("SEATS", "bench", "close"), CrosswalkEntry("BENCHES", "bench", "exact")))
    codes, stats = Matcher(STREET_ASSETS, [crosswalk]).map(values)
    assert set(codes) == {"bench"} and stats.by_match == {"close": 545, "exact": 15}
    assert stats.as_dict()["sources"] == ["bath_furniture@1.0.0"]


def test_boston_ward_formats_map_to_one_code_each(realworld):
    """us_boston_311: 'Ward 3', '03' and '3' are one ward once the vocabulary lists the forms."""
    import csv

    with (realworld / "us_boston_311" / "boston311-100.csv").open(encoding="utf-8") as fh:
        wards = [row["ward"] for row in csv.DictReader(fh)]
    vocabulary = Vocabulary("ward", "1", "Boston ward", tuple(
        Concept(f"ward_{n:02d}", {"en": f"Ward {n}"}, (f"{n:02d}", str(n))) for n in range(1, 23)))
    codes, stats = Matcher(vocabulary).map(pd.Series(wards, dtype="string"))
    assert stats.unmapped == Counter() and stats.values == sum(1 for w in wards if w.strip())
    forms: dict[int, set] = {}
    for written, code in zip(wards, codes):
        if written.strip():
            forms.setdefault(int(written.split()[-1]), set()).add((written.startswith("Ward"), code))
    assert any(len({w for w, _ in f}) == 2 for f in forms.values())  # some ward is written both ways ...
    assert all(len({c for _, c in f}) == 1 for f in forms.values())  # ... and every ward gets one code
