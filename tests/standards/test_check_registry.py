"""The check registry walked: every check has the forms it declares, its forms agree with each other on
random frames, a check registered with a blocking audit blocks a publish, the docs list the registry."""

from __future__ import annotations

import json
import pathlib
import re

import duckdb
import frictionless
import numpy as np
import pandas as pd
import pandera.pandas as pa
import pytest
import shapely
from sqlglot import exp

from twinhub.catalog.stage import Stage
from twinhub.hub.audit import audit_stage, blocked
from twinhub.hub.manifest import Quality
from twinhub.standards.checks import AUDITS, LABELS, SCHEMA, Check, Context, Reason, reasons_json, registry
from twinhub.standards.checks.base import FORMS
from twinhub.standards.coerce import DTYPES
from twinhub.standards.compile import Points, failure_table, pandera_failures
from twinhub.standards.conform import SOURCE_ROW
from twinhub.standards.pack import Standard, load_pack

PACK = load_pack()
EXTENT = (120.85, 30.67, 122.2, 31.88)
DOCS = pathlib.Path(__file__).parents[2] / "docs" / "standards.md"
# a field for every rule the registry knows
FIELDS = [
    {"name": "rank", "type": "integer", "constraints": {"minimum": 1, "maximum": 5}},
    {"name": "ratio", "type": "number", "constraints": {"minimum": -0.5, "maximum": 2.5}},
    {"name": "built", "type": "date", "constraints": {"minimum": "1850-01-01", "maximum": "2030-12-31"}},
    {"name": "reported", "type": "datetime", "constraints": {"minimum": "2000-01-01T00:00:00Z"}},
    {"name": "code", "type": "string",
     "constraints": {"required": True, "minLength": 2, "maxLength": 6, "pattern": "^[0-9]{3}[A-Z]?$"}},
    {"name": "surface", "type": "string", "constraints": {"enum": ["asphalt", "concrete", "gravel"]}},
    {"name": "level", "type": "integer", "constraints": {"enum": [1, 2, 3]}},
    {"name": "category", "type": "string", "vocabulary": "facility_category"},
    {"name": "geometry", "type": "geojson", "geometryType": "Point", "constraints": {"required": True}},
]
TRIAL_SCHEMA = frictionless.Schema.from_descriptor({"fields": FIELDS, "primaryKey": ["code"]})
STANDARD = Standard("trial", "1.0.0", "trial", "every rule once", TRIAL_SCHEMA, pathlib.Path("trial.schema.yaml"))
CONTEXT = Context(pack=PACK, standard=STANDARD, extent=EXTENT)


def _missing_forms(check: Check) -> list[str]:
    """What ``check`` declares and lacks (or has and does not declare), tried on the trial standard."""
    problems = []
    for form in sorted(FORMS):
        defined = getattr(type(check), form) is not getattr(Check, form)
        if defined != (form in check.forms):
            problems.append(f"{check.name}: form {form} {'defined but not declared' if defined else 'missing'}")
    built = [c for c in (check.pandera(f, CONTEXT) for f in STANDARD.fields) if c is not None]
    if "pandera" in check.forms and not built:
        problems.append(f"{check.name}: its pandera form builds nothing for a field with its rule")
    for made in built:
        if "vectorized" in check.forms and check.vectorized(made.statistics or {}) is None:
            problems.append(f"{check.name}: no vectorized form for {made.statistics}")
        if "points" in check.forms and check.points(made.statistics or {}) is None:
            problems.append(f"{check.name}: no points form for {made.statistics}")
    if "sql" in check.forms:
        conditions = [check.sql(exp.column(f.name, quoted=True), f, CONTEXT) for f in STANDARD.fields]
        if not any(c is not None for c in conditions):
            problems.append(f"{check.name}: its sql form gives no condition for a field with its rule")
    return problems


def test_every_registered_check_has_the_forms_it_declares():
    assert [c.name for c in registry.checks()][:2] == ["type", "required"]  # published ids, in reason order
    assert {c.name for c in registry.checks()} >= {
        "type", "required", "minimum", "maximum", "min_length", "max_length", "pattern", "enum", "label_unmapped",
        "geometry_empty", "geometry_invalid", "geometry_type", "outside_city", "duplicate_key"}
    assert [p for c in registry.checks() for p in _missing_forms(c)] == []
    for check in registry.checks():
        assert check.audit in AUDITS and check.tags and check.message, check


def test_a_check_missing_a_declared_form_is_caught():
    class NoSql(Check):
        name, tags, audit, message = "no_sql", frozenset({"schema"}), SCHEMA.name, "says nothing"
        forms = frozenset({"pandera", "sql"})

        def pandera(self, field, context):
            return pa.Check.ge(0, name=self.name) if field.type == "integer" else None

    assert _missing_forms(NoSql()) == ["no_sql: form sql missing",
                                       "no_sql: its sql form gives no condition for a field with its rule"]
    with pytest.raises(ValueError, match=r"declares forms \['sql'\] it does not define"):
        registry.register(NoSql())
    assert registry.get("no_sql") is None

    class Undeclared(NoSql):
        name, forms = "undeclared", frozenset()

    assert _missing_forms(Undeclared()) == ["undeclared: form pandera defined but not declared"]


def test_registration_refuses_a_taken_id_and_an_unknown_audit():
    class Again(Check):
        name, tags, audit, message, forms = "minimum", frozenset({"schema"}), SCHEMA.name, "m", frozenset()

    with pytest.raises(ValueError, match="registered already"):
        registry.register(Again())

    class Nowhere(Again):
        name, audit = "nowhere", "publish_anyway"

    with pytest.raises(ValueError, match="publish_anyway"):
        registry.register(Nowhere())
    assert registry.get("nowhere") is None


# --------------------------------------------------------------------------- forms agree


def _values(field: frictionless.Field, n: int, rng: np.random.Generator, storage: str) -> pd.Series:
    """Random values of ``field``'s catalog dtype, some missing, many outside its rules."""
    missing = rng.random(n) < 0.15
    if field.type in ("integer", "number"):
        raw = rng.integers(-2, 8, n) if field.type == "integer" else np.round(rng.uniform(-1, 3, n), 2)
        return pd.Series(pd.array(raw, DTYPES[field.type])).mask(missing)
    if field.type in ("date", "datetime"):
        days = rng.integers(-60_000, 25_000, n).astype("timedelta64[D]")
        stamps = pd.Series(np.datetime64("1970-01-01") + days).astype("datetime64[ms]")
        stamps = stamps.dt.tz_localize("UTC") if field.type == "datetime" else stamps
        return stamps.mask(missing)
    pool = ["123", "123A", "12", "1234", "987Z", "abc", "", "名称名称名称名称", "1", "555B7", "asphalt", "gravel",
            "dirt", "Asphalt", "library", *PACK.vocabulary("facility_category").codes[:4]]
    return pd.Series(pd.array([pool[i] for i in rng.integers(0, len(pool), n)], f"string[{storage}]")).mask(missing)


def _geometries(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = rng.choice([121.4, 116.4, 31.2, np.nan, EXTENT[0], 121.5, np.inf], n)
    y = rng.choice([31.2, 39.9, 121.4, np.nan, 31.3, EXTENT[3]], n)
    return x, y, rng.random(n) < 0.1


def _objects(x, y, missing) -> np.ndarray:
    out = np.full(len(x), None, dtype=object)
    out[~missing] = shapely.points(x[~missing], y[~missing])
    return out


def _shapes(n: int, rng: np.random.Generator) -> np.ndarray:
    out = _objects(*_geometries(n, rng))
    others = [shapely.LineString([(121.4, 31.2), (121.5, 31.3)]), shapely.Point(), shapely.Polygon(),
              shapely.MultiPoint([(121.4, 31.2), (121.41, 31.21)]),
              shapely.Polygon([(121.4, 31.2), (121.5, 31.3), (121.5, 31.2), (121.4, 31.3)]),  # a bow tie
              shapely.box(EXTENT[0], 31.0, 121.0, 31.1)]  # on the extent's edge
    pick = rng.random(n) < 0.3
    out[pick] = [others[i] for i in rng.integers(0, len(others), int(pick.sum()))]
    return out


def _same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    assert [int(i) for i in a["index"]] == [int(i) for i in b["index"]]
    assert list(a["column"]) == list(b["column"]) and list(a["check"]) == list(b["check"])
    assert list(a["message"]) == list(b["message"])
    for p, q in zip(a["value"], b["value"]):
        if isinstance(p, shapely.Geometry) or isinstance(q, shapely.Geometry):
            assert shapely.to_wkt(p) == shapely.to_wkt(q)
        elif isinstance(q, np.datetime64):  # pandera gives a date's failing value as numpy's, the direct run pandas'
            assert isinstance(p, pd.Timestamp) and p == pd.Timestamp(q)
        else:
            assert (pd.isna(p) and pd.isna(q)) or (p == q and str(p) == str(q))


def _one_check(field, built: pa.Check | None, nullable: bool = True) -> pa.DataFrameSchema:
    dtype = object if field.type == "geojson" else DTYPES[field.type]
    return pa.DataFrameSchema({field.name: pa.Column(dtype, checks=[built] if built else [], nullable=nullable)})


def _cases():
    """(check, field) for every registered check with a pandera form and every field it applies to."""
    return [(c, f) for c in registry.checks() if "pandera" in c.forms for f in STANDARD.fields
            if c.pandera(f, CONTEXT) is not None]


@pytest.mark.parametrize("check, field", _cases(), ids=lambda v: getattr(v, "name", None))
@pytest.mark.parametrize("storage", ["pyarrow", "python"])
def test_each_checks_vectorized_form_reports_what_pandera_reports(check, field, storage):
    built = check.pandera(field, CONTEXT)
    failing = passing = 0
    for seed in range(4):
        rng = np.random.default_rng(seed)
        values = _shapes(300, rng) if field.type == "geojson" else _values(field, 300, rng, storage)
        frame = pd.DataFrame({field.name: values})
        expected = pandera_failures(_one_check(field, built), frame)
        got = failure_table(_one_check(field, built), frame)
        _same(got, expected)
        assert set(got["check"]) <= {check.name}
        failing += len(got)
        passing += int(frame[field.name].notna().sum()) - len(got)
    assert failing > 0 and passing > 0, (failing, passing)  # the frames tried both outcomes


@pytest.mark.parametrize("check", [c for c in registry.checks() if "points" in c.forms], ids=lambda c: c.name)
def test_each_checks_points_form_fails_as_its_shapely_points(check):
    field = STANDARD.geometry_field
    built = check.pandera(field, CONTEXT)
    for seed in range(4):
        x, y, missing = _geometries(300, np.random.default_rng(seed))
        schema = _one_check(field, built)
        expected = pandera_failures(schema, pd.DataFrame({field.name: _objects(x, y, missing)}))
        _same(failure_table(schema, pd.DataFrame(index=range(300)), {field.name: Points(x, y, missing)}), expected)


def test_required_vectorized_form_finds_what_pandera_finds():
    field = STANDARD.schema.get_field("code")
    frame = pd.DataFrame({"code": _values(field, 300, np.random.default_rng(7), "pyarrow")})
    schema = _one_check(field, None, nullable=False)
    got = failure_table(schema, frame)
    _same(got, pandera_failures(schema, frame))
    assert set(got["check"]) == {"required"} and set(got["message"]) == {registry.get("required").message}


def _sql_cases():
    return [(c, f) for c in registry.checks() if {"sql", "vectorized"} <= c.forms for f in STANDARD.fields
            if c.sql(exp.column(f.name, quoted=True), f, CONTEXT) is not None]


@pytest.mark.parametrize("check, field", _sql_cases(), ids=lambda v: getattr(v, "name", None))
def test_each_checks_sql_form_counts_the_rows_it_fails(check, field):
    """``standards check`` counts with the SQL form: over a table, as many rows as the run would hold back."""
    con = duckdb.connect()
    for seed in range(3):
        frame = pd.DataFrame({field.name: _values(field, 300, np.random.default_rng(seed), "pyarrow")})
        if check.name == "required":
            expected = int(frame[field.name].isna().sum())
        else:
            expected = len(failure_table(_one_check(field, check.pandera(field, CONTEXT)), frame))
        condition = check.sql(exp.column(field.name, quoted=True), field, CONTEXT)
        con.register("frame", frame)
        query = exp.select("count(*)").from_("frame").where(condition).sql("duckdb")
        assert con.execute(query).fetchone()[0] == expected > 0, query


# --------------------------------------------------------------------------- the audit reads the registry


class TooTall(Check):
    name = "too_tall"
    tags = frozenset({"schema", "trial"})
    audit = SCHEMA.name
    message = "taller than the city allows"
    forms = frozenset()


def _stage(root: pathlib.Path, check: str, failing: int, rows: int = 10) -> Stage:
    stage = Stage(root, geometry_column="geometry")
    held = list(range(failing))
    quarantine = pd.DataFrame({
        SOURCE_ROW: held, "checks": [check] * failing,
        "reasons": [reasons_json([Reason(check, "height", "高度", 999, "taller than the city allows")])] * failing,
        "record": ["{}"] * failing,
    })
    stage.write(pd.DataFrame({SOURCE_ROW: np.arange(failing, rows, dtype=np.int64)}), quarantine)
    return stage


def test_a_check_registered_with_a_blocking_audit_blocks_the_publish(tmp_path):
    stage = _stage(tmp_path / "stage", "too_tall", failing=6)
    audits = {a.name: a for a in audit_stage(stage, Quality(), None)}
    assert audits["schema"].passed and not blocked(list(audits.values()))  # an unknown check counts nowhere
    with registry.registered(TooTall()) as check:
        assert check.blocking and registry.get("too_tall") is check
        audits = audit_stage(stage, Quality(), None)
        schema = next(a for a in audits if a.name == "schema")
        assert not schema.passed and schema.facts["rows_failing"] == 6 and schema.facts["by_check"] == {"too_tall": 6}
        assert [a.name for a in blocked(audits)] == ["schema"]
    assert registry.get("too_tall") is None and not blocked(audit_stage(stage, Quality(), None))


def test_a_check_registered_with_a_warning_audit_only_warns(tmp_path):
    class Unusual(TooTall):
        name, tags, audit, score_part = "unusual", frozenset({"labels", "trial"}), LABELS.name, "labels"

    stage = _stage(tmp_path / "stage", "unusual", failing=6)
    with registry.registered(Unusual()) as check:
        assert not check.blocking
        audits = audit_stage(stage, Quality(), None)
        coverage = next(a for a in audits if a.name == "label_coverage")
        assert not coverage.passed and coverage.facts["rows_with_unmapped_labels"] == 6
        assert blocked(audits) == []


def test_a_schema_check_on_the_geometry_column_counts_toward_the_geometry_audit(tmp_path):
    stage = Stage(tmp_path / "stage", geometry_column="geometry")
    reasons = reasons_json([Reason("required", "geometry", "x", None, "is required but empty")])
    stage.write(pd.DataFrame({SOURCE_ROW: np.arange(3, 10, dtype=np.int64)}),
                pd.DataFrame({SOURCE_ROW: [0, 1, 2], "checks": ["required"] * 3, "reasons": [reasons] * 3,
                              "record": ["{}"] * 3}))
    audits = {a.name: a for a in audit_stage(stage, Quality(max_geometry_failure_share=0.2), None)}
    assert audits["crs_and_geometry"].facts["rows_failing"] == 3 and not audits["crs_and_geometry"].passed
    assert audits["schema"].facts["rows_failing"] == 0


# --------------------------------------------------------------------------- reasons and docs


def test_a_reason_is_stored_as_the_json_the_catalog_always_had():
    reason = Reason("minimum", "capacity", "床位", -1, "must be at least 0")
    assert json.loads(reasons_json([reason])) == [{"check": "minimum", "column": "capacity", "source_column": "床位",
                                                    "value": -1, "message": "must be at least 0"}]
    assert list(json.loads(reasons_json([reason]))[0]) == ["check", "column", "source_column", "value", "message"]
    assert Reason.from_dict(reason.as_dict()) == reason
    assert Reason.from_dict({"check": "duplicate_key", "column": "id", "value": "A", "message": "m"}).source_column is None


def test_the_docs_list_the_registered_checks():
    text = DOCS.read_text(encoding="utf-8")
    found = re.search(r"<!-- checks: registry\.markdown\(\) -->\n(.*?)<!-- /checks -->", text, re.S)
    assert found, "docs/standards.md lost its generated list of checks"
    assert found.group(1) == registry.markdown(), (
        "docs/standards.md's list of checks differs from the registry: replace it with the output of "
        "python -c 'from twinhub.standards.checks import registry; print(registry.markdown(), end=\"\")'")
