"""The OpenAPI schema: served without a token, valid OpenAPI 3, describing every route and method of
segments.web.urls_api with real shapes, and generated without a single warning."""
from __future__ import annotations

import re

import pytest
from django.core.management import call_command
from openapi_spec_validator import validate

from segments.web import schema, urls_api, urls_measurement

pytestmark = pytest.mark.django_db


@pytest.fixture
def spec(client) -> dict:
    response = client.get("/api/schema", {"format": "json"})
    assert response.status_code == 200, response.content[:300]
    return response.json()


def openapi_path(route: str) -> str:
    """`api/segments/<int:pk>/why/<int:customer_pk>` as the schema names it (pk is `id`)."""
    path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: "{" + ("id" if m.group(1) == "pk" else m.group(1)) + "}", route)
    return "/" + path


def test_the_schema_is_valid_openapi_3(spec):
    validate(spec)
    assert spec["openapi"].startswith("3.")
    assert spec["info"]["title"] == "shopseg admin API"
    assert spec["components"]["securitySchemes"]["sessionToken"] == {
        "type": "http", "scheme": "bearer", "bearerFormat": "JWT",
        "description": "The App Bridge session token of the shop's admin session."}


def api_patterns() -> list:
    """The API's routes: segments.web.urls_api's and the measurement module's `api/` ones."""
    return [p for p in [*urls_api.urlpatterns, *urls_measurement.urlpatterns]
            if str(p.pattern).startswith("api/") and p.name != "api-schema"]


def test_every_route_and_method_is_described_with_its_shapes_and_errors(spec):
    assert len(api_patterns()) >= len(urls_api.urlpatterns) - 1
    for pattern in api_patterns():
        item = spec["paths"].get(openapi_path(str(pattern.pattern)))
        assert item is not None, pattern.name
        view = pattern.callback.view_class
        methods = {m for m in ("get", "post", "put", "patch", "delete") if hasattr(view, m)}
        assert set(item) - {"parameters"} == methods, pattern.name
        for method in methods:
            operation = item[method]
            assert operation.get("summary"), (pattern.name, method)
            assert operation["security"] == [{"sessionToken": []}], (pattern.name, method)
            ok = next(code for code in operation["responses"] if code.startswith("2"))
            assert operation["responses"][ok].get("content"), (pattern.name, method)
            unauthorized = operation["responses"]["401"]["content"]["application/json"]["schema"]
            assert unauthorized == {"$ref": "#/components/schemas/Error"}, (pattern.name, method)
            if method in ("post", "put", "patch"):
                assert operation["requestBody"]["content"]["application/json"]["schema"], (pattern.name, method)
                assert {"400", "413"} <= set(operation["responses"]), (pattern.name, method)
            if "{id}" in openapi_path(str(pattern.pattern)):
                assert "404" in operation["responses"], (pattern.name, method)


def test_the_error_shape_carries_problem_paths(spec):
    schemas = spec["components"]["schemas"]
    assert schemas["Error"]["properties"]["error"] == {"$ref": "#/components/schemas/ErrorBody"}
    body = schemas["ErrorBody"]
    assert set(body["required"]) == {"code", "message"}
    assert body["properties"]["problems"]["items"] == {"$ref": "#/components/schemas/Problem"}
    assert set(schemas["Problem"]["properties"]) == {"path", "message"}


def test_members_and_segments_shapes(spec):
    schemas = spec["components"]["schemas"]
    assert {"admin_url", "shopify_id", "email", "holdout"} <= set(schemas["Member"]["properties"])
    members = spec["paths"]["/api/segments/{id}/members"]["get"]
    assert {p["name"] for p in members["parameters"]} >= {"id", "q", "limit", "after"}
    assert {"tag", "status", "member_count", "summary"} <= set(schemas["Segment"]["properties"])
    assert schemas["SegmentStatusEnum"]["enum"] == ["active", "paused", "archived"]


def test_request_bodies_are_json_objects_that_name_every_field_they_take(spec):
    schemas = spec["components"]["schemas"]
    bodies = {f"{method.upper()} {path}": operation["requestBody"] for path, item in spec["paths"].items()
              for method, operation in item.items() if "requestBody" in operation}
    assert len(bodies) >= 8
    for label, body in bodies.items():
        assert set(body["content"]) == {"application/json"}, label     # no form or multipart bodies
        component = schemas[body["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]]
        assert component["additionalProperties"] is False, label
    update = bodies["PATCH /api/segments/{id}"]
    assert update.get("required") is True and "reason" in schemas["PatchedSegmentUpdateRequest"]["required"]


def test_query_parameters_state_the_bounds_the_views_enforce(spec):
    def parameter(path: str, name: str, method: str = "get") -> dict:
        return next(p["schema"] for p in spec["paths"][path][method]["parameters"] if p["name"] == name)

    assert parameter("/api/segments/{id}/members", "limit") == {"type": "integer", "minimum": 1, "maximum": 500}
    assert parameter("/api/segments/{id}/history", "before")["minimum"] == 1
    assert parameter("/api/segments/{id}/members", "q")["maxLength"] == 100
    assert parameter("/api/measurement/review", "month")["pattern"] == "^(?:20[0-9]{2}-(0[1-9]|1[0-2]))$"
    assert parameter("/api/measurement/review", "export")["enum"] == ["json", "csv", "md"]
    assert parameter("/api/measurement/kpis", "export")["enum"] == ["json", "csv"]
    assert parameter("/api/segments/{id}", "reason", "delete")["maxLength"] == 500
    assert spec["components"]["schemas"]["Metric"]["properties"]["column"]["nullable"] is True


def test_non_blank_means_what_python_s_strip_keeps():
    """JSON Schema's \\s is not Python's whitespace; the schema spells Python's out."""
    spelled = re.compile(f"[{schema.WHITESPACE}]")
    assert {c for c in map(chr, range(0x110000)) if c.isspace()} == {
        c for c in map(chr, range(0x110000)) if spelled.fullmatch(c)}
    for text in ("a", " a ", "\ufeff"):
        assert re.fullmatch(schema.NON_BLANK, text)
    for text in ("", " ", "\x1e\u3000", "a\x00"):
        assert not re.fullmatch(schema.NON_BLANK, text)


def test_generation_has_no_warnings(tmp_path):
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))
    assert (tmp_path / "schema.yaml").read_text().startswith("openapi: 3")
