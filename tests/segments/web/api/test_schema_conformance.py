"""The API keeps the promises of its own OpenAPI schema: schemathesis reads /api/schema, generates
requests for every operation (examples, boundary cases of every parameter and field, and random ones;
requests the schema allows and requests it forbids), sends them through shopseg.wsgi in-process with a
real session token of a seeded shop, and runs all its checks on every answer: no 5xx, only documented
status codes and content types, answers that match their schemas, allowed requests accepted,
forbidden ones refused, a missing token refused.

Bounded and derandomized, so a run is the same every time and takes seconds; the whole test runs
twice, once with the ids schemathesis draws (mostly no such row: 404s) and once with the ids of the
seeded shop's segment and customer (real answers).
"""
from __future__ import annotations

import os

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from schemathesis.checks import positive_data_acceptance
from schemathesis.config import SchemathesisConfig

from devstore import oauth
from segments.membership.models import Segment
from shopseg.wsgi import application
from tests.segments.web.api.conftest import BUYERS, assert_error, create

pytestmark = pytest.mark.django_db

# Random cases per operation and generation mode (boundary cases come on top), and the seed; a deeper
# run for a change to the API: SCHEMATHESIS_MAX_EXAMPLES=200 SCHEMATHESIS_SEED=<any> pytest <this file>.
MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "8"))
SEED = int(os.environ.get("SCHEMATHESIS_SEED", "15"))

# Where the API refuses more than a schema can state, a request the schema allows may rightly be a
# 400; there only the check that such requests are accepted is off (every other check still runs).
REFUSED_BEYOND_THE_SCHEMA = {
    "POST /api/segments": "a rule document's grammar (docs/rules.md); a handle already in use",
    "PATCH /api/segments/{id}": "a rule document's grammar",
    "POST /api/segments/dry-run": "a rule document's grammar",
    "POST /api/segments/{id}/dry-run": "a rule document's grammar",
    "POST /api/groups": "a group name already in use",
    "PATCH /api/settings": "a holdout tag starts with the tag prefix; neither may clash with the shop's tags",
    "GET /api/segments/{id}/history": "`before` names an event of this history",
    "GET /api/measurement/kpis": "start not after end, at most 366 days apart",
    "GET /api/segments/{id}/kpis": "start not after end, at most 366 days apart",
    "GET /api/measurement/migration": "start not after end, at most 366 days apart",
    "GET /api/segments/{id}/lift": "a period the holdout can be measured over",
    "PUT /api/segments/{id}/playbook": "an experience's fields are those of its preset (segments/experiences/presets.py)",
}


def in_test_transaction(environ, start_response):
    """shopseg.wsgi serving inside the test's transaction, as Django's test client serves: without the
    per-request `close_old_connections`, which would close the connection that transaction lives on."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        response = application(environ, start_response)
        try:
            return [b"".join(response)]
        finally:
            response.close()     # request_finished, as a WSGI server sends it
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def load(devstore, settings, shop):
    """The schema as /api/schema serves it, with the shop's session token on every request (and taken
    off by the checks that try a request without one)."""
    # Shopify's tokens live a minute; this one is minted the same way, to last the whole run.
    token = oauth.session_token(devstore.store, shop.domain, settings.SHOPIFY_API_KEY, ttl=600)

    def load(*, operations=(), **parameters):
        config = SchemathesisConfig.from_dict({
            "seed": SEED,
            "headers": {"Authorization": f"Bearer {token}"},
            "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
            "parameters": parameters,
            "operations": list(operations),
        })
        return schemathesis.openapi.from_wsgi("/api/schema?format=json", in_test_transaction, config=config)

    return load


@pytest.fixture
def drawn_ids(load):
    # A drawn id is almost never a row, so an operation on one answers 404 before it reads anything
    # else: its boundary cases are run on real rows (seeded_ids), its random ones here.
    return load(operations=[{"include-path-regex": r"\{id\}", "phases": {"coverage": {"enabled": False}}}])


@pytest.fixture
def seeded_ids(load, api, shop, django_capture_on_commit_callbacks):
    """A segment of the shop with members, history and a playbook, and one of its customers."""
    segment = create(api, django_capture_on_commit_callbacks, {"name": "Buyers", "rules": BUYERS})
    assert api.put(f"/api/segments/{segment['id']}/playbook", {"goal": "Thank them"}).status_code == 200
    customer = shop.customer_pks[1]
    return load(**{"path.id": segment["id"], "path.customer_pk": customer})


def call_and_validate(case) -> None:
    beyond = case.operation.label in REFUSED_BEYOND_THE_SCHEMA
    case.call_and_validate(excluded_checks=[positive_data_acceptance] if beyond else None)


@schemathesis.pytest.from_fixture("drawn_ids").parametrize()
def test_the_api_keeps_its_schema(case):
    call_and_validate(case)


@schemathesis.pytest.from_fixture("seeded_ids").include(path_regex=r"\{id\}").parametrize()
def test_the_api_keeps_its_schema_on_real_rows(case):
    call_and_validate(case)


def test_every_exception_names_an_operation_of_the_schema(client):
    paths = client.get("/api/schema", {"format": "json"}).json()["paths"]
    labels = {f"{method.upper()} {path}" for path, item in paths.items() for method in item}
    assert set(REFUSED_BEYOND_THE_SCHEMA) <= labels


# -- what the run found, pinned as plain tests ------------------------------------------------------------
def test_a_path_no_api_route_matches_is_the_api_s_json_404_after_the_token(api, client):
    for path in ("/api/segments/null,null", "/api/segments/abc/members", "/api/segments/", "/api/nothing"):
        assert assert_error(api.get(path), 404, "not_found")["message"] == "No such API route."
        assert_error(api.post(path, {}), 404, "not_found")
        assert_error(client.get(path), 401, "not_authenticated")


SEGMENT_PARAMETER_REFUSALS = [
    ("members", {"limit": ""}), ("members", {"after": ""}), ("history", {"before": ""}),
    ("history", {"before": "0"}), ("history", {"customer": "0"}), ("kpis", {"end": ""}), ("kpis", {"export": ""}),
    ("kpis", {"export": "md"}), ("lift", {"target": ""}), ("lift", {"start": "0001-01-01"}),
    ("kpis", {"end": "0001-01-01"}), ("members", {"q": "a\x00b"}),
]
SHOP_PARAMETER_REFUSALS = [
    ("/api/measurement/kpis", {"segments": ""}), ("/api/measurement/review", {"month": ""}),
    ("/api/measurement/review", {"month": "1999-12"}), ("/api/measurement/migration", {"group": "0"}),
    ("/api/measurement/migration", {"group": "1", "segments": "1"}), ("/api/sync/audit", {"limit": ""}),
]


def test_parameters_the_schema_does_not_allow_are_400s_naming_the_last_one(api, django_capture_on_commit_callbacks):
    created = create(api, django_capture_on_commit_callbacks, {"name": "Buyers", "rules": BUYERS})
    calls = [(f"/api/segments/{created['id']}/{path}", params) for path, params in SEGMENT_PARAMETER_REFUSALS]
    for path, params in calls + SHOP_PARAMETER_REFUSALS:
        error = assert_error(api.get(path, **params), 400, "invalid_params")
        assert [p["path"] for p in error["problems"]] == [list(params)[-1]], (path, params)


def test_the_review_of_the_first_month_compares_it_with_the_month_before(api):
    response = api.get("/api/measurement/review", month="2000-01")
    assert response.status_code == 200, response.content


def test_an_archive_reason_with_nul_is_refused_and_archives_nothing(api, django_capture_on_commit_callbacks):
    created = create(api, django_capture_on_commit_callbacks, {"name": "Buyers", "rules": BUYERS})
    assert_error(api.delete(f"/api/segments/{created['id']}", reason="a%00b"), 400, "invalid_params")
    assert api.get(f"/api/segments/{created['id']}").json()["status"] == "active"


def test_null_is_no_value_of_a_field_the_schema_says_is_not_nullable(api):
    for body, path in [({"template": None, "rules": BUYERS, "name": "X"}, "template"),
                       ({"overrides": None, "template": "vip"}, "overrides"),
                       ({"handle": None, "rules": BUYERS, "name": "X"}, "handle")]:
        error = assert_error(api.post("/api/segments", body), 400, "invalid_settings")
        assert [p["path"] for p in error["problems"]] == [path], body
    assert not Segment.objects.exists()


def test_retrying_ids_null_is_refused_rather_than_read_as_every_change(api):
    error = assert_error(api.post("/api/sync/retry", {"ids": None}), 400, "invalid_settings")
    assert [p["path"] for p in error["problems"]] == ["ids"]


def test_the_bodies_whose_fields_are_all_optional_may_be_left_out(api, django_capture_on_commit_callbacks):
    created = create(api, django_capture_on_commit_callbacks, {"name": "Buyers", "rules": BUYERS})
    assert api.put(f"/api/segments/{created['id']}/playbook", raw=b"").status_code == 200
    assert api.patch("/api/settings", raw=b"").json()["tag_prefix"] == "seg:"
    assert_error(api.patch("/api/settings", raw=b"\n"), 400, "invalid_json")
