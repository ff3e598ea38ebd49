"""Reading a request body as one JSON object, the same way for every endpoint that takes JSON: strict
JSON (no NaN or Infinity), UTF-8, an object at the top; anything else is the one `invalid_json` refusal."""
from __future__ import annotations

import json

from shopseg.errors import Refused


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def json_object(raw: bytes) -> dict:
    """The JSON object in `raw`, or Refused(400, "invalid_json")."""
    try:
        data = json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise Refused(400, "invalid_json", "The body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise Refused(400, "invalid_json", "The body must be a JSON object.")
    return data
