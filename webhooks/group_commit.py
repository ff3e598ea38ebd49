"""Group commit: the deliveries that request threads of one worker process record at the same time
share one transaction, so PostgreSQL flushes its WAL once for all of them.

A durable delivery costs PostgreSQL more in its commit (the flush and the wake-ups around it) than
in the insert itself (BENCHMARKS.md, "Webhook endpoint under gunicorn"). With several threads per
worker, deliveries arrive while a commit is in flight; instead of each waiting for its own, they
queue, and the next thread to lead writes the whole queue in one transaction. Nobody waits on a
timer: a batch is whatever queued during the previous commit, so one delivery alone is written at
once, and under load batches grow by themselves.

Every thread still returns only after its own row is committed, so the 200 keeps meaning "durable".
A batch that fails as a whole (one refused payload aborts the transaction; a connection dropped)
is written again one delivery at a time by the caller's `write_one`, so a bad delivery fails only
itself.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any


class _Item:
    __slots__ = ("delivery", "done", "result", "error")

    def __init__(self, delivery) -> None:
        self.delivery, self.done, self.result, self.error = delivery, False, None, None


class GroupCommit:
    """`submit(delivery)` returns `write_*`'s result for it, or raises its exception.

    `write_many(deliveries)` writes a batch in one transaction and returns one result per delivery
    (or raises, rolling the batch back); `write_one(delivery)` writes one in autocommit.
    """

    def __init__(self, write_many: Callable[[Sequence[Any]], list], write_one: Callable[[Any], Any],
                 max_batch: int = 64) -> None:
        self._write_many, self._write_one, self._max_batch = write_many, write_one, max_batch
        self._cond = threading.Condition()
        self._queue: list[_Item] = []
        self._leading = False
        self.batches = 0          # for the benchmark's accounting
        self.rows = 0

    def submit(self, delivery):
        item = _Item(delivery)
        with self._cond:
            self._queue.append(item)
            while not item.done:
                if self._leading:
                    self._cond.wait()
                    continue
                self._leading = True
                batch, self._queue = self._queue[:self._max_batch], self._queue[self._max_batch:]
                self._cond.release()
                try:
                    self._write(batch)
                finally:
                    for stranded in batch:     # only if _write itself was interrupted
                        if not stranded.done:
                            stranded.error, stranded.done = RuntimeError("delivery not written"), True
                    self._cond.acquire()
                    self._leading = False
                    self._cond.notify_all()
        if item.error is not None:
            raise item.error
        return item.result

    def _write(self, batch: list[_Item]) -> None:
        self.batches += 1
        self.rows += len(batch)
        if len(batch) > 1:
            try:
                results = self._write_many([i.delivery for i in batch])
            except Exception:       # rolled back whole: each delivery again, on its own
                pass
            else:
                for item, result in zip(batch, results):
                    item.result, item.done = result, True
                return
        for item in batch:
            try:
                item.result = self._write_one(item.delivery)
            except Exception as exc:
                item.error = exc
            item.done = True
