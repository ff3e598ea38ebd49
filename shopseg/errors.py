"""The app's one error type and one error body: the JSON API and the webhook endpoint (and its fast
path) answer `{"error": {"code", "message"}}`, with `problems` (each `{"path", "message"}`) when a
document had several; DRF's own refusals are given the same shape (segments.web.api)."""
from __future__ import annotations

from collections.abc import Iterable

MAX_PROBLEMS = 50        # listed in one body; enough to fix a form, small enough for a 400


class Refused(Exception):
    """A request answered with an error: its HTTP status, a stable code, a sentence for people."""

    def __init__(self, status_code: int, code: str, message: str, problems: Iterable = ()) -> None:
        super().__init__(message)
        self.status_code, self.code, self.message = status_code, code, message
        self.problems = [p.to_dict() if hasattr(p, "to_dict") else p for p in problems][:MAX_PROBLEMS]

    def body(self) -> dict:
        error = {"code": self.code, "message": self.message}
        if self.problems:
            error["problems"] = self.problems
        return {"error": error}
