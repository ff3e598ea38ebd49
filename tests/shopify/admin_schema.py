"""Shopify's Admin GraphQL schema for an API version, built from the introspection vendored in
tests/shopify/schema/ (PROVENANCE.md there says where it comes from and how to refresh it)."""
from __future__ import annotations

import functools
import gzip
import hashlib
import json
from pathlib import Path

from graphql import GraphQLSchema, build_client_schema

SCHEMA_DIR = Path(__file__).with_name("schema")
# The checksum PROVENANCE.md records for each vendored file: a file replaced without updating the
# note fails here rather than silently moving what the suite checks against.
SCHEMA_SHA256 = {
    "2026-10": "f3b522f264556925eada700e795e4a002a9cba83444ebcc6c0d724254a0c6593",
}


@functools.cache
def shopify_admin_schema(version: str) -> GraphQLSchema:
    path = SCHEMA_DIR / f"admin_{version}.json.gz"
    if not path.exists():
        raise FileNotFoundError(f"No vendored Admin schema for API version {version}: vendor "
                                f"{path.relative_to(SCHEMA_DIR.parent.parent.parent)} as "
                                "tests/shopify/schema/PROVENANCE.md describes")
    raw = path.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != SCHEMA_SHA256.get(version):
        raise ValueError(f"{path.name} has sha256 {digest}, not the {SCHEMA_SHA256.get(version)} "
                         "PROVENANCE.md records; refresh both together")
    return build_client_schema(json.loads(gzip.decompress(raw))["data"])
