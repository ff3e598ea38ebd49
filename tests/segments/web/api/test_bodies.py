"""Request bodies are checked by the serializer that documents them, strictly as JSON Schema reads
them: the wrong JSON type is refused (never coerced), an undeclared field is refused, and every
problem is at its path with a short message."""
from __future__ import annotations

import pytest
from rest_framework import serializers as s

from segments.web.bodies import Body, problems


class Sample(Body):
    count = s.IntegerField(min_value=1, max_value=50, required=False)
    flag = s.BooleanField(required=False)
    text = s.CharField(max_length=5, required=False, allow_blank=True)
    ids = s.ListField(child=s.IntegerField(min_value=1, max_value=9), max_length=3, required=False)
    name = s.CharField(max_length=10)


def check(data: dict) -> list[tuple[str, str]]:
    body = Sample(data=data)
    body.is_valid()
    return [(p.path, p.message) for p in problems(body.errors)]


@pytest.mark.parametrize("field, value, message", [
    ("count", "5", "must be a whole number from 1 to 50"),
    ("count", 5.0, "must be a whole number from 1 to 50"),
    ("count", True, "must be a whole number from 1 to 50"),
    ("flag", 1, "must be true or false"),
    ("flag", "true", "must be true or false"),
    ("text", 7, "must be a string"),
    ("ids", {"0": 1}, "must be a list"),
])
def test_a_value_of_the_wrong_json_type_is_refused_not_coerced(field, value, message):
    assert check({"name": "x", field: value}) == [(field, message)]


def test_values_of_the_right_type_pass_unchanged_and_text_is_not_trimmed():
    body = Sample(data={"name": " padded ", "count": 50, "flag": False, "text": "", "ids": [1, 9]})
    assert body.is_valid(), body.errors
    assert dict(body.validated_data) == {"name": " padded ", "count": 50, "flag": False, "text": "", "ids": [1, 9]}


def test_every_problem_is_at_its_path_with_the_fields_own_limits():
    assert sorted(check({"name": "x" * 11, "count": 51, "text": "toolong", "ids": [1, 10, "2"]})) == [
        ("count", "must be a whole number from 1 to 50"), ("ids[2]", "must be a whole number from 1 to 9"),
        ("name", "must be at most 10 characters"), ("text", "must be at most 5 characters")]
    assert check({"name": "x", "ids": [1, 2, 3, 4]}) == [("ids", "must hold at most 3 items")]
    assert check({"name": "x", "ids": [0]}) == [("ids[0]", "must be a whole number from 1 to 9")]


def test_missing_null_and_undeclared_fields_are_named():
    assert check({}) == [("name", "required")]
    assert check({"name": None}) == [("name", "must not be null")]
    assert check({"name": "x", "colour": "blue", "count": 0}) == [
        ("colour", "unknown field; the fields are count, flag, text, ids, name"),
        ("count", "must be a whole number from 1 to 50")]
