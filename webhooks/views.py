"""POST /webhooks/shopify: verify, record, answer. No business logic here.

`delivery_receive` is the whole endpoint; two callers run it: the Django view below (tests, and any
deployment without the WSGI fast path) and `webhooks.fastpath`, which serves the same path in
front of Django under gunicorn. They differ only in the connection the row is written on and in
how processing is scheduled once it is committed.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from segments.shops.admin_api import app_secrets
from shopseg.errors import Refused
from shopseg.shopify.signatures import webhook_hmac_valid
from webhooks.dispatch import drain_schedule
from webhooks.models import EventStatus
from webhooks.recording import Delivery, DeliveryInvalid, delivery_parse, webhook_event_record

Recorder = Callable[[Delivery], "tuple[int, str] | None"]   # -> (id, status); None for a duplicate
CHUNK = 64 * 1024   # bytes asked of the stream at a time while reading a chunked body


def _chunked(headers: Mapping[str, str]) -> bool:
    return not headers.get("Content-Length") and "chunked" in (headers.get("Transfer-Encoding") or "").lower()


def body_read(*, headers: Mapping[str, str], read: Callable[[int], bytes], terminated: bool) -> bytes:
    """The request's body, at most DATA_UPLOAD_MAX_MEMORY_SIZE bytes, or Refused.

    A body with a Content-Length is read in one call. One sent chunked has none: the server
    de-chunks it into a stream that ends with the body (`wsgi.input_terminated`, as gunicorn says),
    read until it ends or passes the cap. A server that does not end the stream there would leave
    the read waiting for the connection to close, so such a body is refused (411) instead.
    """
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    if _chunked(headers):
        if not terminated:
            raise Refused(411, "length_required", "Content-Length required")
        pieces, size = [], 0
        while piece := read(min(CHUNK, limit + 1 - size)):
            pieces.append(piece)
            size += len(piece)
            if size > limit:
                raise Refused(413, "too_large", "payload too large")
        return b"".join(pieces)
    try:
        length = int(headers.get("Content-Length") or 0)
    except ValueError:
        raise Refused(400, "invalid_delivery", "bad Content-Length") from None
    if length < 0:
        raise Refused(400, "invalid_delivery", "bad Content-Length")
    if length > limit:
        raise Refused(413, "too_large", "payload too large")
    return read(length)


def delivery_receive(*, headers: Mapping[str, str], read_body: Callable[[int], bytes], record: Recorder,
                     schedule: Callable[[], None], terminated: bool = False) -> Refused | None:
    """Check, record durably, schedule processing; None (a 200), or why it was refused. Refusals
    store nothing.

    `headers` is case-insensitive (Django's `request.headers` or the fast path's view of the WSGI
    environ); `read_body(n)` returns up to n more bytes of the body (b"" at its end), and
    `terminated` says the stream ends with the body, so a chunked one can be read (see body_read).
    """
    try:
        body = body_read(headers=headers, read=read_body, terminated=terminated)
    except Refused as refused:
        return refused
    # 1. the signature over the raw body, before anything else is looked at
    if not webhook_hmac_valid(body, headers.get("X-Shopify-Hmac-Sha256"), app_secrets()):
        return Refused(401, "invalid_signature", "invalid signature")
    # 2. the headers and the JSON, 3. recorded once (a duplicate webhook id records nothing)
    try:
        delivery = delivery_parse(headers=headers, body=body)
        recorded = record(delivery)
    except DeliveryInvalid as exc:
        return Refused(400, "invalid_delivery", str(exc))
    # 4. processing is scheduled once the row is committed
    if recorded is not None and recorded[1] == EventStatus.PENDING:
        schedule()
    # 5. answer fast
    return None


def _record(delivery: Delivery) -> tuple[int, str] | None:
    return webhook_event_record(delivery=delivery)


def _drain_on_commit() -> None:
    transaction.on_commit(drain_schedule)


@csrf_exempt
@require_POST
def receive(request: HttpRequest) -> HttpResponse:
    if _chunked(request.headers):   # Django reads a body by its Content-Length, so none; the server's stream has it
        read_body = request.META["wsgi.input"].read
    else:
        read_body = lambda _length: request.body  # noqa: E731 - Django's own reading, as sized by Content-Length
    refused = delivery_receive(headers=request.headers, read_body=read_body, record=_record,
                               schedule=_drain_on_commit, terminated=bool(request.META.get("wsgi.input_terminated")))
    if refused is not None:
        return JsonResponse(refused.body(), status=refused.status_code)
    return HttpResponse(status=200)
