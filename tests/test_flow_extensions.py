"""The Flow trigger extensions as Shopify CLI takes them (its schema for `flow_trigger`), and as the
sender uses them: the handles segments.experiences.flow sends, with the payload keys it fills."""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from segments.experiences.flow import HANDLES

EXTENSIONS = Path(__file__).resolve().parent.parent / "extensions"
TRIGGER_TYPES = {"customer_reference", "order_reference", "product_reference", "company_reference",
                 "company_contact_reference", "boolean", "email", "single_line_text_field", "url", "number_decimal"}
FILES = sorted(EXTENSIONS.glob("shopseg-flow-*/shopify.extension.toml"))


@pytest.mark.parametrize("path", FILES, ids=[p.parent.name for p in FILES])
def test_each_trigger_is_one_the_cli_accepts(path):
    config = tomllib.loads(path.read_text())
    [trigger] = config["extensions"]
    assert trigger["type"] == "flow_trigger"
    assert re.fullmatch(r"[a-z0-9-]{1,30}", trigger["handle"])
    assert re.fullmatch(r"Customer [a-z ]+", trigger["name"])        # object + past-tense verb, sentence case
    fields = config["settings"]["fields"]
    assert {f["type"] for f in fields} <= TRIGGER_TYPES
    keys = [f["key"] for f in fields if not f["type"].endswith("_reference")]
    assert all(re.fullmatch(r"[a-zA-Z\s]+", k) for k in keys)    # letters and spaces only


def test_the_sender_sends_these_triggers_with_their_fields():
    handles = {}
    for path in FILES:
        config = tomllib.loads(path.read_text())
        handles[config["extensions"][0]["handle"]] = {
            "customer_id" if f["type"] == "customer_reference" else f["key"] for f in config["settings"]["fields"]}
    assert set(handles) == set(HANDLES.values())
    assert all(keys == {"customer_id", "Segment name", "Segment tag"} for keys in handles.values())
