"""The app's busiest endpoints served in front of Django's handler (see shopseg/wsgi.py).

Shopify's webhook deliveries and the web pixel's event batches are the app's heaviest traffic, and
for them Django's request machinery (middleware chain, URL resolution, request signals, a connection
health check per request) costs as much as the work itself. `FastPaths` answers exactly the
(method, path) pairs of settings.FAST_PATHS with their handlers, which run the endpoints' own code
(the views call the same functions); everything else goes to Django untouched: other paths and
methods, a Host that Django would refuse (ALLOWED_HOSTS, answered by Django with its 400), a
plain-HTTP request while SECURE_SSL_REDIRECT is on (Django's redirect), and any database but
PostgreSQL (then there is no fast path at all). Whether a request's Host and scheme may be served
here is decided by Django's own `get_host()` and `is_secure()`, once per distinct combination.

A handler writes on a `ThreadConnection`: a persistent psycopg connection of its worker thread, in
autocommit and with prepared statements on, so a statement that returns is committed and the
answer still comes only after the write is durable.
"""
from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Callable
from http import HTTPStatus
from typing import TypeVar

import psycopg
from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.core.handlers.wsgi import WSGIRequest
from django.db import connections
from django.http import HttpResponse
from django.utils.log import log_response
from django.utils.module_loading import import_string

from shopseg.errors import Refused

log = logging.getLogger("django.request")
_GATE_CACHE_SIZE = 256
T = TypeVar("T")


class EnvironHeaders:
    """Request headers from a WSGI environ, looked up as Django's `request.headers` does."""

    __slots__ = ("environ",)
    _UNPREFIXED = {"CONTENT_TYPE", "CONTENT_LENGTH"}

    def __init__(self, environ):
        self.environ = environ

    def get(self, name: str, default=None):
        key = name.upper().replace("-", "_")
        return self.environ.get(key if key in self._UNPREFIXED else "HTTP_" + key, default)


class ThreadConnection:
    """One psycopg connection per worker thread (gthread workers have several), opened with Django's
    own parameters, in autocommit."""

    def __init__(self, cursor_for: Callable[[psycopg.Connection], psycopg.Cursor] = psycopg.Cursor):
        self._local = threading.local()
        self._cursor_for = cursor_for

    def cursor(self) -> tuple[psycopg.Cursor, bool]:
        """This thread's cursor, and whether its connection is new."""
        cursor = getattr(self._local, "cursor", None)
        if cursor is not None and not cursor.connection.closed and not cursor.connection.broken:
            return cursor, False
        params = connections["default"].get_connection_params()   # Django's own: same database and options
        params.pop("cursor_factory", None)
        # Django turns psycopg's prepared statements off (prepare_threshold=None) unless told otherwise,
        # and with them off `prepare=True` is ignored: PostgreSQL would parse and plan every request.
        params.pop("prepare_threshold", None)
        self._local.cursor = self._cursor_for(psycopg.connect(autocommit=True, **params))
        return self._local.cursor, True

    def discard(self) -> None:
        cursor, self._local.cursor = getattr(self._local, "cursor", None), None
        if cursor is not None:
            cursor.connection.close()

    def run(self, work: Callable[[psycopg.Cursor], T], *, retried: Callable[[], None] | None = None) -> T:
        """`work(cursor)`; when it fails on a connection that was already open (one that died while
        idle, or a prepared plan a migration invalidated), once more on a new one. `work` must be
        safe to repeat; `retried` is called when it was, since the first attempt may have committed.
        A failure on a new connection is real, and raised."""
        cursor, fresh = self.cursor()
        try:
            return work(cursor)
        except psycopg.Error:
            self.discard()
            if fresh:
                raise
        cursor, _ = self.cursor()
        try:
            result = work(cursor)
        except psycopg.Error:
            self.discard()
            raise
        if retried is not None:
            retried()
        return result


def answer(start_response, status: int, body: bytes = b"", content_type: str = "text/html; charset=utf-8",
           headers: dict[str, str] | None = None) -> list[bytes]:
    """A response with only what its client reads: status, type, length and `headers`."""
    start_response(f"{status} {HTTPStatus(status).phrase}",
                   [("Content-Type", content_type), ("Content-Length", str(len(body)))]
                   + list((headers or {}).items()))
    return [body]


def log_refusal(environ, status: int) -> None:
    """A 4xx logged as Django logs it (`django.request`, as a warning; a 500 is logged with its
    traceback where it was raised)."""
    if 400 <= status < 500:
        log_response("%s: %s", HTTPStatus(status).phrase, environ.get("PATH_INFO"),
                     response=HttpResponse(status=status), request=WSGIRequest(environ))


def refusal(environ, start_response, status: int, body: dict, headers: dict[str, str] | None = None) -> list[bytes]:
    """A refusal's JSON `body`, logged as Django logs it."""
    log_refusal(environ, status)
    return answer(start_response, status, json.dumps(body).encode(), "application/json", headers)


def internal_error(environ, start_response) -> list[bytes]:
    log.exception("Internal Server Error: %s", environ.get("PATH_INFO"), extra={"status_code": 500})
    return refusal(environ, start_response, 500, Refused(500, "internal_error", "internal error").body())


class FastPaths:
    """WSGI app: each (method, path) of `routes` answered by its handler, everything else by `app`."""

    def __init__(self, app, routes: dict[tuple[str, str], Callable]):
        self.app = app
        self.routes = routes
        proxy = settings.SECURE_PROXY_SSL_HEADER
        self._gate_keys = ("HTTP_HOST", "HTTP_X_FORWARDED_HOST", "HTTP_X_FORWARDED_PORT", "SERVER_NAME",
                           "SERVER_PORT", "wsgi.url_scheme") + ((proxy[0],) if proxy else ())
        self._gate: dict[tuple, bool] = {}

    def __call__(self, environ, start_response):
        handler = self.routes.get((environ.get("REQUEST_METHOD"), environ.get("PATH_INFO")))
        if handler is None or not self._served_here(environ):
            return self.app(environ, start_response)
        try:
            return handler(environ, start_response)
        except Exception:
            return internal_error(environ, start_response)

    def _served_here(self, environ) -> bool:
        """Django's answer to: is this Host allowed, and would SecurityMiddleware leave the scheme alone?"""
        key = tuple(environ.get(k) for k in self._gate_keys)
        decision = self._gate.get(key)
        if decision is None:
            probe = {k: v for k, v in zip(self._gate_keys, key) if v is not None}
            probe.update(REQUEST_METHOD="POST", PATH_INFO=environ.get("PATH_INFO"), SCRIPT_NAME="",
                         **{"wsgi.input": io.BytesIO()})
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


def wrap(app):
    """`app` behind the fast paths settings.FAST_PATHS names ("METHOD /path" -> a handler's dotted
    path), when the database is PostgreSQL."""
    if connections["default"].vendor != "postgresql":
        return app
    routes = {tuple(route.split(" ", 1)): import_string(handler)() for route, handler in settings.FAST_PATHS.items()}
    return FastPaths(app, routes)
