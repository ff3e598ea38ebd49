"""`POST /webhooks/shopify` served in front of Django's handler (see shopseg/wsgi.py).

Shopify's deliveries are the app's heaviest traffic, and for them Django's request machinery
(middleware chain, URL resolution, request signals, a connection health check per request) costs
more than the work itself. This WSGI wrapper answers exactly that path and method with the view's
own code, `webhooks.views.delivery_receive`: the same HMAC check over the raw body before anything
else, the same parsing, the same single recording statement and the same scheduling. What differs:

- the row is written on a persistent psycopg connection of this thread, in autocommit, as a
  prepared statement: when it returns the delivery is committed, so the 200 still comes only after
  the delivery is durable. A connection that fails is dropped and the statement tried once more on
  a new one (safe: the insert is keyed on the webhook id, so a replay records nothing twice);
- processing is scheduled after that commit by `drain_schedule`, as the view does on_commit, but
  from a thread of the worker process that makes the call at most every 50 ms for all the commits
  since its last call (see `CoalescedSchedule`): under load one Redis round trip serves dozens of
  deliveries, and the request never waits on Redis at all;
- responses carry only status, `Content-Type` and `Content-Length` (Shopify reads the status; no
  browser loads them), and refusals are logged as Django logs them (`django.request`, 4xx as
  warnings, 5xx as errors).

Everything else goes to Django untouched: other paths and methods, a Host that Django would refuse
(ALLOWED_HOSTS, answered by Django with its 400), a plain-HTTP request while SECURE_SSL_REDIRECT is
on (Django's redirect), and any database but PostgreSQL (then there is no fast path at all).
Whether a request's Host and scheme may be served here is decided by Django's own `get_host()` and
`is_secure()`, once per distinct combination.
"""
from __future__ import annotations

import atexit
import io
import json
import logging
import os
import threading
import time
from http import HTTPStatus

import psycopg
from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.core.handlers.wsgi import WSGIRequest
from django.db import close_old_connections, connections
from django.http import HttpResponse
from django.utils.log import log_response

from shopseg.errors import Refused
from webhooks.dispatch import drain_schedule
from webhooks.recording import record_cursor, webhook_event_record_psycopg
from webhooks.views import delivery_receive

PATH = "/webhooks/shopify"
log = logging.getLogger("django.request")
_OK = ("200 OK", [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", "0")])
_GATE_CACHE_SIZE = 256
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


class EnvironHeaders:
    """Request headers from a WSGI environ, looked up as Django's `request.headers` does."""

    __slots__ = ("environ",)
    _UNPREFIXED = {"CONTENT_TYPE", "CONTENT_LENGTH"}

    def __init__(self, environ):
        self.environ = environ

    def get(self, name: str, default=None):
        key = name.upper().replace("-", "_")
        return self.environ.get(key if key in self._UNPREFIXED else "HTTP_" + key, default)


class WebhookFastPath:
    """WSGI app: POST /webhooks/shopify here, everything else to `app` (Django)."""

    def __init__(self, app):
        self.app = app
        self._local = threading.local()   # one connection per worker thread (gthread workers have several)
        proxy = settings.SECURE_PROXY_SSL_HEADER
        self._gate_keys = ("HTTP_HOST", "HTTP_X_FORWARDED_HOST", "HTTP_X_FORWARDED_PORT", "SERVER_NAME",
                           "SERVER_PORT", "wsgi.url_scheme") + ((proxy[0],) if proxy else ())
        self._gate: dict[tuple, bool] = {}
        self.schedule = CoalescedSchedule()

    def __call__(self, environ, start_response):
        if (environ.get("PATH_INFO") != PATH or environ.get("REQUEST_METHOD") != "POST"
                or not self._served_here(environ)):
            return self.app(environ, start_response)
        body_stream = environ["wsgi.input"]
        try:
            refused = delivery_receive(headers=EnvironHeaders(environ), read_body=body_stream.read,
                                       record=self._record, schedule=self.schedule.notify,
                                       terminated=bool(environ.get("wsgi.input_terminated")))
        except Exception:
            log.exception("Internal Server Error: %s", PATH, extra={"status_code": 500})
            refused = Refused(500, "internal_error", "internal error")
        if refused is None:
            start_response(*_OK)
            return [b""]
        return self._refusal(environ, start_response, refused)

    def _refusal(self, environ, start_response, refused: Refused):
        status = refused.status_code
        response = HttpResponse(json.dumps(refused.body()), content_type="application/json", status=status)
        if status < 500:   # a 500 was logged with its traceback already
            log_response("%s: %s", response.reason_phrase, PATH, response=response, request=WSGIRequest(environ))
        content = response.content
        start_response(f"{status} {HTTPStatus(status).phrase}",
                       [("Content-Type", "application/json"), ("Content-Length", str(len(content)))])
        return [content]

    def _served_here(self, environ) -> bool:
        """Django's answer to: is this Host allowed, and would SecurityMiddleware leave the scheme alone?"""
        key = tuple(environ.get(k) for k in self._gate_keys)
        decision = self._gate.get(key)
        if decision is None:
            probe = {k: v for k, v in zip(self._gate_keys, key) if v is not None}
            probe.update(REQUEST_METHOD="POST", PATH_INFO=PATH, SCRIPT_NAME="", **{"wsgi.input": io.BytesIO()})
            request = WSGIRequest(probe)
            try:
                request.get_host()
                decision = not (settings.SECURE_SSL_REDIRECT and not request.is_secure())
            except DisallowedHost:
                decision = False
            if len(self._gate) >= _GATE_CACHE_SIZE:
                self._gate.clear()
            self._gate[key] = decision
        return decision

    # -- the connection --------------------------------------------------------------------------
    def _cursor(self) -> tuple[psycopg.Cursor, bool]:
        cursor = getattr(self._local, "cursor", None)
        if cursor is not None and not cursor.connection.closed and not cursor.connection.broken:
            return cursor, False
        params = connections["default"].get_connection_params()   # Django's own: same database and options
        params.pop("cursor_factory", None)
        # Django turns psycopg's prepared statements off (prepare_threshold=None) unless told otherwise,
        # and with them off `prepare=True` is ignored: PostgreSQL would parse and plan every delivery.
        params.pop("prepare_threshold", None)
        conn = psycopg.connect(autocommit=True, **params)
        self._local.cursor = record_cursor(conn)
        return self._local.cursor, True

    def _discard(self) -> None:
        cursor, self._local.cursor = getattr(self._local, "cursor", None), None
        if cursor is not None:
            cursor.connection.close()

    def _record(self, delivery):
        cursor, fresh = self._cursor()
        try:
            return webhook_event_record_psycopg(cursor, delivery=delivery)
        except psycopg.Error:
            # A connection that died while idle, or a prepared plan a migration invalidated: retry once
            # on a new connection. A failure there is real, and is a 500 (Shopify retries).
            self._discard()
            if fresh:
                raise
        cursor, _ = self._cursor()
        try:
            recorded = webhook_event_record_psycopg(cursor, delivery=delivery)
        except psycopg.Error:
            self._discard()
            raise
        if recorded is None:
            # The first attempt may have committed before its connection failed; then this one finds
            # the row already there. Schedule processing anyway (a drain with nothing to do is cheap).
            self.schedule.notify()
        return recorded


def wrap(app):
    """`app` behind the fast path."""
    return WebhookFastPath(app)
