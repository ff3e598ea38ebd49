"""The handler of `POST /webhooks/shopify` in front of Django's (shopseg.fastpath, shopseg/wsgi.py).

It runs the view's own code, `webhooks.views.delivery_receive`: the same HMAC check over the raw
body before anything else, the same parsing, the same single recording statement and the same
scheduling. What differs:

- the row is written on the thread's persistent psycopg connection (shopseg.fastpath.ThreadConnection),
  in autocommit, as a prepared statement: when it returns the delivery is committed, so the 200
  still comes only after the delivery is durable. A connection that fails is dropped and the
  statement tried once more on a new one (safe: the insert is keyed on the webhook id, so a replay
  records nothing twice);
- processing is scheduled after that commit by `drain_schedule`, as the view does on_commit, but
  from a thread of the worker process that makes the call at most every 50 ms for all the commits
  since its last call (see `CoalescedSchedule`): under load one Redis round trip serves dozens of
  deliveries, and the request never waits on Redis at all;
- responses carry only status, `Content-Type` and `Content-Length` (Shopify reads the status).
"""
from __future__ import annotations

import atexit
import logging
import os
import threading
import time

from django.db import close_old_connections

from shopseg.fastpath import EnvironHeaders, ThreadConnection, answer, refusal
from webhooks.dispatch import drain_schedule
from webhooks.recording import record_cursor, webhook_event_record_psycopg
from webhooks.views import delivery_receive

SCHEDULE_INTERVAL = 0.05   # seconds between two drain_schedule() calls of one process, at most


class CoalescedSchedule:
    """`drain_schedule()` after commits, from a thread of this process, at most once per interval.

    Each commit calls `notify()`; the thread clears the signal and then calls `drain_schedule()`, so
    every commit is followed by a call that starts after it, which is all the drain protocol needs
    (webhooks.dispatch: either the call schedules a drain, or one is scheduled or running and will
    see the delivery). Several commits between two calls share one call. A process that dies
    between a commit and the call leaves the delivery pending, as a dead Redis does, for the
    once-a-minute sweeper; a process that exits normally makes the call on its way out.
    """

    def __init__(self, schedule=None, interval: float = SCHEDULE_INTERVAL):
        self._schedule = schedule or drain_schedule
        self._interval = interval
        self._due = threading.Event()
        self._lock = threading.Lock()
        self._pid: int | None = None

    def notify(self) -> None:
        if self._pid != os.getpid():   # first use in this process (gunicorn forks workers)
            self._start()
        self._due.set()

    def _start(self) -> None:
        with self._lock:
            if self._pid == os.getpid():
                return
            self._due = threading.Event()
            threading.Thread(target=self._run, name="webhook-drain-schedule", daemon=True).start()
            atexit.register(self.flush)
            self._pid = os.getpid()

    def _run(self) -> None:
        while True:
            self._due.wait()
            self._due.clear()
            self._call()
            time.sleep(self._interval)

    def _call(self) -> None:
        close_old_connections()   # drain_schedule drains in-process when there is no Redis
        try:
            self._schedule()
        except Exception:   # drain_schedule already survives a dead Redis or broker; anything else is logged
            logging.getLogger(__name__).exception("scheduling the webhook drain failed; the sweeper will")
        finally:
            close_old_connections()

    def flush(self) -> None:
        if self._due.is_set():
            self._due.clear()
            self._call()


class WebhookFastPath:
    """The handler of POST /webhooks/shopify in shopseg.fastpath.FastPaths."""

    def __init__(self):
        self.connection = ThreadConnection(record_cursor)
        self.schedule = CoalescedSchedule()

    def __call__(self, environ, start_response):
        refused = delivery_receive(headers=EnvironHeaders(environ), read_body=environ["wsgi.input"].read,
                                   record=self._record, schedule=self.schedule.notify,
                                   terminated=bool(environ.get("wsgi.input_terminated")))
        if refused is None:
            return answer(start_response, 200)
        return refusal(environ, start_response, refused.status_code, refused.body())

    def _record(self, delivery):
        # The first attempt may have committed before its connection failed; then the retry finds the
        # row already there (None). Processing is scheduled anyway: a drain with nothing to do is cheap.
        return self.connection.run(lambda cursor: webhook_event_record_psycopg(cursor, delivery=delivery),
                                   retried=self.schedule.notify)
