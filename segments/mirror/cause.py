"""Why the mirror is being written: recorded as `Customer.dirty_cause` next to `dirty_at`.

The code that applies a change says what it is applying, and every customer the writer marks
dirty meanwhile gets that cause:

    with dirty_cause("orders/create"):      # a webhook delivery: its topic
        writer.orders_upsert(...)

Causes are short labels ("orders/create", "backfill", "reconcile"), never personal data. Outside
any `dirty_cause` block the cause is "" (unknown). Blocks nest; the innermost one wins. A
ContextVar keeps concurrent threads and tasks apart.
"""
from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

MAX_LENGTH = 100    # Customer.dirty_cause's max_length
BACKFILL = "backfill"
RECONCILE = "reconcile"

_cause: contextvars.ContextVar[str] = contextvars.ContextVar("shopseg_dirty_cause", default="")


def current_dirty_cause() -> str:
    """The cause of the current write; "" when nobody said."""
    return _cause.get()


@contextlib.contextmanager
def dirty_cause(cause: str) -> Iterator[str]:
    """Customers marked dirty inside the block get `cause` (cut to the column's length)."""
    token = _cause.set((cause or "")[:MAX_LENGTH])
    try:
        yield _cause.get()
    finally:
        _cause.reset(token)
