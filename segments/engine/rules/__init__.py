"""Segment rule documents: `parse` turns JSON into a typed tree, or raises RuleError naming each bad path.

Parsing is pure (no database, no clock) and strict: unknown keys are errors, so a typo never
silently widens a segment. The document format is described in docs/rules.md.

The package: `tree` (the typed tree, its limits, its canonical document), `reader` and `values`
(reading a document), `text` (rule sets in words). Its public names are gathered here.
"""
from __future__ import annotations

import json

from segments.engine.rules.reader import Reader
from segments.engine.rules.text import describe, describe_node
from segments.engine.rules.tree import (
    EARLIEST_DATE, LATEST_DATE, MAX_DOCUMENT_BYTES, MAX_PROBLEMS, RULES_VERSION, All, Any_, Condition, Node, Not,
    Problem, RuleError, RuleSet, SettingsError, conditions,
)

__all__ = ["EARLIEST_DATE", "LATEST_DATE", "MAX_PROBLEMS", "RULES_VERSION", "All", "Any_", "Condition", "Node", "Not",
           "Problem", "RuleError", "RuleSet", "SettingsError", "conditions", "describe", "describe_node", "parse"]


def parse(document: object) -> RuleSet:
    """Validate a rule document (decoded JSON) into a RuleSet, or raise RuleError with every problem."""
    try:
        text = json.dumps(document, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        size = len(text.encode("utf-8"))
        decoded = json.loads(text)
    except (TypeError, ValueError, RecursionError):
        # Anything json cannot carry (NaN, sets, non-string keys it cannot coerce, cycles, lone
        # surrogates, absurd nesting) could never have arrived over the API either.
        raise RuleError([Problem("", "must be JSON: objects, lists, strings, numbers, true, false and null")]) from None
    if size > MAX_DOCUMENT_BYTES:
        raise RuleError([Problem("", f"is {size} bytes as JSON; at most {MAX_DOCUMENT_BYTES} are allowed")])
    # The JSON round trip means the tree depends only on what JSON can say (tuples are lists, ...).
    reader = Reader()
    ruleset = reader.document(decoded)
    if reader.problems or ruleset is None:
        raise RuleError(reader.problems)
    return ruleset
