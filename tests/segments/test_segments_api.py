"""The segments API tests live in tests/segments/api/; this name keeps the helpers importable for
tests elsewhere that still import them from here."""
from tests.segments.api.conftest import Api, mint  # noqa: F401
