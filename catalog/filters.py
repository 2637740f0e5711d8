"""OGC CQL2-text filters, compiled to a sqlglot syntax tree over one collection's columns.

The text is parsed by ``cql2`` (developmentseed's cql2-rs); its JSON form is then compiled node by
node from an allow-list: comparisons, AND/OR/NOT, LIKE, IN, BETWEEN, IS NULL and S_INTERSECTS
(Part 3's Basic CQL2, Advanced Comparison and Basic Spatial conformance classes). A property must be
one of the columns the reader may see; every value becomes a literal node. Nothing of the text is
ever pasted into SQL, so a filter can only narrow what the collection already returns.

    >>> print(compile_filter("capacity > 5 AND name LIKE 'A%'", {"capacity": "INTEGER", "name": "VARCHAR"}).sql())
    ("capacity" > 5.0 AND "name" LIKE 'A%')
"""

from __future__ import annotations

import json
from typing import Any

import cql2
from sqlglot import exp

from twinhub.errors import UserError

COMPARISONS = {"=": exp.EQ, "<>": exp.NEQ, "<": exp.LT, "<=": exp.LTE, ">": exp.GT, ">=": exp.GTE}
SPATIAL = {"s_intersects": "ST_Intersects"}
CONFORMANCE = (
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
    "http://www.opengis.net/spec/cql2/1.0/conf/advanced-comparison-operators",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions",
)
MAX_TEXT = 20_000  # characters: a filter is a condition, not a document
MAX_NODES = 500


class FilterError(UserError, ValueError):
    """A filter that cannot be used; the message names the part and what is allowed (HTTP 400)."""


def compile_filter(text: str, columns: dict[str, str], geometry: str | None = None) -> exp.Expression:
    """The condition of ``text`` over ``columns`` (name -> DuckDB type); ``geometry`` names the spatial column."""
    if len(text) > MAX_TEXT:
        raise FilterError(f"filter: longer than {MAX_TEXT} characters")
    try:
        tree = cql2.parse_text(text).to_json()
    except Exception as exc:  # cql2 raises its own ParseError/ValidationError types
        raise FilterError(f"filter: not CQL2 text: {str(exc).splitlines()[0][:200]}") from None
    return _Compiler(columns, geometry).node(tree)


class _Compiler:
    def __init__(self, columns: dict[str, str], geometry: str | None):
        self.columns, self.geometry, self.nodes = columns, geometry, 0

    def node(self, tree: Any) -> exp.Expression:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise FilterError(f"filter: more than {MAX_NODES} terms")
        if isinstance(tree, dict) and "op" in tree:
            return self.operation(str(tree["op"]).lower(), tree.get("args") or [])
        if isinstance(tree, dict) and "property" in tree:
            return self.column(tree["property"])
        return self.literal(tree)

    def operation(self, op: str, args: list) -> exp.Expression:
        if op in ("and", "or"):
            parts = [self.node(a) for a in args]
            joined = parts[0]
            for part in parts[1:]:
                joined = (exp.And if op == "and" else exp.Or)(this=joined, expression=part)
            return exp.Paren(this=joined)
        if op == "not":
            return exp.Not(this=exp.Paren(this=self.node(self._one(op, args))))
        if op in COMPARISONS:
            left, right = self._two(op, args)
            return COMPARISONS[op](this=self.node(left), expression=self.node(right))
        if op == "like":
            left, right = self._two(op, args)
            return exp.Like(this=self.node(left), expression=self.node(right))
        if op == "between":
            if len(args) != 3:
                raise FilterError("filter: BETWEEN takes a value, a low and a high bound")
            return exp.Between(this=self.node(args[0]), low=self.node(args[1]), high=self.node(args[2]))
        if op == "in":
            left, values = self._two(op, args)
            if not isinstance(values, list) or not values:
                raise FilterError("filter: IN takes a list of values")
            return exp.In(this=self.node(left), expressions=[self.node(v) for v in values])
        if op == "isnull":
            return exp.Is(this=self.node(self._one(op, args)), expression=exp.Null())
        if op in SPATIAL:
            left, right = self._two(op, args)
            return exp.Anonymous(this=SPATIAL[op], expressions=[self.node(left), self.node(right)])
        allowed = "comparisons, AND, OR, NOT, LIKE, IN, BETWEEN, IS NULL, S_INTERSECTS"
        raise FilterError(f"filter: {op.upper()} is not supported; use {allowed}")

    def column(self, name: Any) -> exp.Expression:
        if not isinstance(name, str) or name not in self.columns:
            known = ", ".join(sorted(self.columns))
            raise FilterError(f"filter: unknown property {name!r}; the collection's queryables are {known}")
        return exp.column(name, quoted=True)

    def literal(self, value: Any) -> exp.Expression:
        if isinstance(value, bool):
            return exp.Boolean(this=value)
        if isinstance(value, (int, float)):
            return exp.Literal.number(repr(value))
        if isinstance(value, str):
            return exp.Literal.string(value)
        if value is None:
            return exp.Null()
        if isinstance(value, dict) and "type" in value and ("coordinates" in value or "geometries" in value):
            if self.geometry is None:
                raise FilterError("filter: the collection has no geometry to compare with")
            geojson = exp.Literal.string(json.dumps(value, separators=(",", ":")))
            return exp.Anonymous(this="ST_GeomFromGeoJSON", expressions=[geojson])
        if isinstance(value, dict) and "bbox" in value:
            box = value["bbox"]
            if not (isinstance(box, list) and len(box) == 4 and all(isinstance(v, (int, float)) for v in box)):
                raise FilterError("filter: BBOX takes four numbers")
            return exp.Anonymous(this="ST_MakeEnvelope", expressions=[exp.Literal.number(repr(float(v))) for v in box])
        raise FilterError(f"filter: values of this kind are not supported: {json.dumps(value)[:80]}")

    @staticmethod
    def _one(op: str, args: list) -> Any:
        if len(args) != 1:
            raise FilterError(f"filter: {op.upper()} takes one argument")
        return args[0]

    @staticmethod
    def _two(op: str, args: list) -> tuple[Any, Any]:
        if len(args) != 2:
            raise FilterError(f"filter: {op.upper()} takes two arguments")
        return args[0], args[1]
