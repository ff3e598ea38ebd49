"""POST /storefront/events: the web pixel's batches (public: the shop's ingest key names the shop,
the caps and the strict reading in segments.storefront keep the rest out). Answers any origin (the
pixel runs in Shopify's sandbox, on the shop's own domains) and never sets or reads a cookie.

`events_receive` is the whole endpoint; two callers run it: the Django view (tests, and any
deployment without the WSGI fast path) and `StorefrontFastPath`, which serves POST in front of
Django under gunicorn (shopseg.fastpath) on a connection of its own."""
from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from segments.storefront.batch import MAX_BODY_BYTES, Batch, batch_read
from segments.storefront.caps import CLIENT_WINDOW_SECONDS
from segments.storefront.ingest import batch_ingest
from shopseg.errors import Refused
from shopseg.fastpath import ThreadConnection, answer, refusal

CORS = {"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Methods": "POST, OPTIONS",
        "Access-Control-Allow-Headers": "Content-Type", "Access-Control-Max-Age": "86400"}


def _store(batch: Batch, now: dt.datetime) -> int:
    return batch_ingest(batch, now=now)


def events_receive(*, content_length: str | None, read_body: Callable[[int], bytes],
                   store: Callable[[Batch, dt.datetime], int] = _store) -> tuple[int, dict, dict[str, str]]:
    """A POSTed batch read and stored: (status, JSON body, headers beyond CORS). `read_body(n)` reads
    the n bytes Content-Length declares; a body declared larger than a batch may be is refused
    before a byte of it is read."""
    try:
        declared = max(int(content_length or 0), 0)
    except ValueError:
        declared = 0
    try:
        if declared > MAX_BODY_BYTES:
            raise Refused(413, "payload_too_large", f"A batch is at most {MAX_BODY_BYTES // 1024} KB.")
        now = timezone.now()
        batch = batch_read(read_body(declared), now=now)
        stored = store(batch, now)
    except Refused as refused:
        retry = {"Retry-After": str(CLIENT_WINDOW_SECONDS)} if refused.status_code == 429 else {}
        return refused.status_code, refused.body(), retry
    return 202, {"received": len(batch.events), "stored": stored}, {}


@csrf_exempt     # no cookie, no session: nothing a forged cross-site request could ride on
def storefront_events(request: HttpRequest) -> HttpResponse:
    if request.method == "OPTIONS":
        status, body, headers = 204, None, {}
    elif request.method != "POST":
        status, body, headers = 405, Refused(405, "method_not_allowed", "Send events with POST.").body(), {
            "Allow": "POST, OPTIONS"}
    else:
        status, body, headers = events_receive(content_length=request.META.get("CONTENT_LENGTH"),
                                               read_body=lambda _declared: request.body)
    response = HttpResponse(json.dumps(body) if body is not None else b"", status=status,
                            content_type="application/json")
    for name, value in {**CORS, **headers}.items():
        response[name] = value
    return response


class StorefrontFastPath:
    """The handler of POST /storefront/events in shopseg.fastpath.FastPaths."""

    def __init__(self):
        self.connection = ThreadConnection()

    def __call__(self, environ, start_response):
        status, body, headers = events_receive(
            content_length=environ.get("CONTENT_LENGTH"),
            read_body=environ["wsgi.input"].read,
            store=self._store)
        headers = {**CORS, **headers}
        if status >= 400:
            return refusal(environ, start_response, status, body, headers)
        return answer(start_response, status, json.dumps(body).encode(), "application/json", headers)

    def _store(self, batch: Batch, now: dt.datetime) -> int:
        # Safe to repeat on a new connection when the open one had died: the events are keyed and the
        # visitor's times only widen (the repeat counts the batch against its caps once more).
        return self.connection.run(lambda cursor: batch_ingest(batch, now=now, cursor=cursor))
