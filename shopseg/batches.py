"""Work taken in batches until it runs out: for the beat tasks that drain a queue kept in a table."""
from __future__ import annotations

from collections.abc import Callable


def drain_batches(take: Callable[[], int], *, batch: int, runs: int) -> int:
    """Call `take` (which does up to `batch` items, returning how many) until a short batch or `runs`
    calls; how many items were done. Bounded, so a busy queue does not keep one task running forever."""
    done = 0
    for _ in range(runs):
        taken = take()
        done += taken
        if taken < batch:
            break
    return done
