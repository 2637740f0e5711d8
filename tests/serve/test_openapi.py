"""The served OpenAPI definition (/api) is true of the service's own answers (schemathesis, in-process).

schemathesis generates requests from the definition against the app on a hub with the sample city and
checks every answer: no server error, its status code documented, its body and content type as the
definition says. A few examples per operation keep it well under a minute."""

from __future__ import annotations

import datetime as dt

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from twinhub.catalog.features import tables
from twinhub.serve.app import create_app

EXAMPLES = 6  # per operation: a few dozen requests in all
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def api(served_hub):
    """The definition the app serves at /api, bound to the app itself (no socket)."""
    return schemathesis.openapi.from_asgi("/api", create_app(served_hub, today=dt.date.today()))


def test_every_answer_is_as_the_definition_says(api, served_hub):
    """Each operation of /api, a few generated requests (schemathesis's pytest plugin does not run on
    pytest 9: the operations are walked here). A generated ``cid`` is most often one of the catalog's
    tables (readable or not), else what schemathesis made up: a made-up id is only ever a 404; and
    half the requests go without their made-up query parameters, so that bodies of 200s are checked."""
    con = served_hub.lake.connect(read_only=True)
    try:
        ids = tables(con)
    finally:
        con.close()
    operations = [result.ok() for result in api.get_all_operations()]
    assert {o.path for o in operations} >= {"/collections", "/collections/{cid}/items"}
    for operation in operations:
        @given(case=operation.as_strategy(), cid=st.one_of(st.sampled_from(ids), st.none()), query=st.booleans())
        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def answers(case, cid, query):
            if cid is not None and "cid" in (case.path_parameters or {}):
                case.path_parameters["cid"] = cid
            if not query:  # made-up parameters are mostly a 400: without them a real collection answers 200
                case.query = {}
            case.call_and_validate(checks=CHECKS)

        answers()


ITEMS, TILE = "/collections/{cid}/items", "/collections/{cid}/tiles/WebMercatorQuad/{z}/{y}/{x}"
NAMED = [  # (operation, path parameters, query): generated ids rarely name a real collection
    ("/collections/{cid}", {"cid": "emergency.shelters"}, None),
    ("/collections/{cid}", {"cid": "city.facility"}, None),
    (ITEMS, {"cid": "emergency.shelters"}, None),
    (ITEMS, {"cid": "emergency.shelters"}, {"limit": 2, "filter": "name LIKE '%a%'"}),
    (ITEMS, {"cid": "city.facility"}, {"limit": 3}),
    (ITEMS, {"cid": "civil_affairs.elderly_care"}, None),  # internal: 403 without a token
    (ITEMS, {"cid": "no.such"}, None),
    (ITEMS, {"cid": "emergency.shelters"}, {"bbox": "1,2"}),
    (ITEMS, {"cid": "emergency.shelters"}, {"filter": "name ="}),
    ("/collections/{cid}/items/{fid}", {"cid": "emergency.shelters", "fid": "no-such-id"}, None),
    ("/collections/{cid}/queryables", {"cid": "emergency.shelters"}, None),
    ("/collections/{cid}/tiles", {"cid": "emergency.shelters"}, None),
    ("/collections/{cid}/tiles/WebMercatorQuad/tilejson.json", {"cid": "emergency.shelters"}, None),
    (TILE, {"cid": "emergency.shelters", "z": 0, "y": 0, "x": 0}, None),
    (TILE, {"cid": "emergency.shelters", "z": 0, "y": 5, "x": 0}, None),
    ("/versions", {}, {"as-of": "999999"}),
]


@pytest.mark.parametrize("route, path_parameters, query", NAMED)
def test_named_requests_answer_as_the_definition_says(api, route, path_parameters, query):
    case = api.find_operation_by_path("GET", route).Case(path_parameters=path_parameters, query=query)
    response = case.call_and_validate(checks=CHECKS)
    assert response.status_code < 500


@pytest.mark.parametrize("route, path_parameters", [("/collections", {}),
                                                    ("/collections/{cid}", {"cid": "civil_affairs.elderly_care"}),
                                                    (ITEMS, {"cid": "civil_affairs.elderly_care"})])
def test_a_token_holders_answers_are_as_the_definition_says(api, health_token, route, path_parameters):
    """With a token the answers carry more (a granted internal dataset, protected columns): still as described;
    a wrong token's 401 too."""
    operation = api.find_operation_by_path("GET", route)
    granted = operation.Case(path_parameters=path_parameters, headers={"Authorization": f"Bearer {health_token}"})
    assert granted.call_and_validate(checks=CHECKS).status_code == 200
    wrong = operation.Case(path_parameters=path_parameters, headers={"Authorization": "Bearer th_nope_nope"})
    assert wrong.call_and_validate(checks=CHECKS).status_code == 401
