"""The theme app extension as Shopify takes it: theme-check (Shopify's own linter, with the
theme-app-extension config) finds nothing, every block's schema is one the theme editor accepts, and
the embed's script stays under the 10 KB Shopify allows an app block's JavaScript."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

EXTENSION = Path(__file__).resolve().parent.parent / "extensions" / "shopseg-theme"
BLOCKS = {  # file → (name in the theme editor, target)
    "segment-content": ("Segment content", "section"),
    "segment-banner": ("Segment banner", "section"),
    "segment-products": ("Segment product list", "section"),
    "segment-experience": ("Segment experience", "section"),
    "shopseg-embed": ("Segment personalization", "body"),
}
SIDEBAR = {"header", "paragraph"}    # settings that are text in the editor: `content`, no id or label


def schema(block: str) -> dict:
    source = (EXTENSION / "blocks" / f"{block}.liquid").read_text()
    found = re.findall(r"{%-?\s*schema\s*-?%}(.*?){%-?\s*endschema\s*-?%}", source, re.S)
    assert len(found) == 1, f"{block}: one {{% schema %}} expected"
    return json.loads(found[0])


def test_it_is_a_theme_extension_with_exactly_these_blocks():
    config = tomllib.loads((EXTENSION / "shopify.extension.toml").read_text())
    assert config == {"name": "shopseg-theme", "type": "theme"}
    assert {path.stem for path in (EXTENSION / "blocks").glob("*.liquid")} == set(BLOCKS)


def test_theme_check_finds_nothing():
    if shutil.which("node") is None:
        pytest.fail("node is not installed; theme-check runs on Node.js")
    if not (EXTENSION / "node_modules" / "@shopify" / "theme-check-node").is_dir():
        pytest.fail(f"theme-check is not installed in {EXTENSION}/node_modules: `make install` installs it (npm ci)")
    run = subprocess.run(["node", "check.js"], cwd=EXTENSION, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert json.loads(run.stdout) == []


@pytest.mark.parametrize("block", BLOCKS)
def test_each_schema_is_one_the_theme_editor_accepts(block):
    found = schema(block)
    name, target = BLOCKS[block]
    assert (found["name"], found["target"]) == (name, target)
    assert len(found["name"]) < 25    # Shopify's advice for the editor's list
    inputs = [s for s in found["settings"] if s["type"] not in SIDEBAR]
    ids = [s["id"] for s in inputs]
    assert len(ids) == len(set(ids)), f"duplicate setting ids in {block}: {ids}"
    assert all(s.get("label", "").strip() for s in inputs), f"a setting without a label in {block}"
    assert all(s.get("content", "").strip() for s in found["settings"] if s["type"] in SIDEBAR)
    for setting in inputs:
        if setting["type"] == "range":    # Shopify refuses a range without a default inside its bounds
            assert setting["min"] <= setting["default"] <= setting["max"]
        if setting["type"] == "richtext" and "default" in setting:
            assert setting["default"].startswith("<p>")
    if "stylesheet" in found:
        assert (EXTENSION / "assets" / found["stylesheet"]).is_file()


def test_the_app_blocks_share_the_segments_and_preview_settings():
    for block, (_, target) in BLOCKS.items():
        if target == "section":
            ids = {s.get("id") for s in schema(block)["settings"]}
            # An experience belongs to one segment's playbook: its block names that one segment.
            assert {"segment" if block == "segment-experience" else "segments", "preview"} <= ids, block


def test_the_embed_script_is_under_shopifys_10_kb():
    # theme-check's AssetSizeAppBlockJavaScript (10,000 B) covers only a schema's `javascript`; the
    # embed loads its script with `defer` through asset_url instead, so the limit is checked here.
    assert 0 < (EXTENSION / "assets" / "shopseg-embed.js").stat().st_size < 10_000
