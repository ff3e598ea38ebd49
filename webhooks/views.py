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

from segments.services.shopify_api import app_secrets
from shopseg.shopify.signatures import webhook_hmac_valid
from webhooks.dispatch import drain_schedule
from webhooks.models import EventStatus
from webhooks.services import Delivery, DeliveryInvalid, delivery_parse, webhook_event_record

Recorder = Callable[[Delivery], "tuple[int, str] | None"]   # -> (id, status); None for a duplicate


def delivery_receive(*, headers: Mapping[str, str], read_body: Callable[[int], bytes], record: Recorder,
                     schedule: Callable[[], None]) -> tuple[int, str]:
    """Check, record durably, schedule processing; (status, error message or ""). Refusals store nothing.

    `headers` is case-insensitive (Django's `request.headers` or the fast path's view of the WSGI
    environ); `read_body(n)` returns the request's n-byte body.
    """
    try:
        length = int(headers.get("Content-Length") or 0)
    except ValueError:
        return 400, "bad Content-Length"
    if length < 0:
        return 400, "bad Content-Length"
    if length > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
        return 413, "payload too large"
    body = read_body(length)
    # 1. the signature over the raw body, before anything else is looked at
    if not webhook_hmac_valid(body, headers.get("X-Shopify-Hmac-Sha256"), app_secrets()):
        return 401, "invalid signature"
    # 2. the headers and the JSON, 3. recorded once (a duplicate webhook id records nothing)
    try:
        delivery = delivery_parse(headers=headers, body=body)
        recorded = record(delivery)
    except DeliveryInvalid as exc:
        return 400, str(exc)
    # 4. processing is scheduled once the row is committed
    if recorded is not None and recorded[1] == EventStatus.PENDING:
        schedule()
    # 5. answer fast
    return 200, ""


def _record(delivery: Delivery) -> tuple[int, str] | None:
    return webhook_event_record(delivery=delivery)


def _drain_on_commit() -> None:
    transaction.on_commit(drain_schedule)


@csrf_exempt
@require_POST
def receive(request: HttpRequest) -> HttpResponse:
    status, error = delivery_receive(headers=request.headers, read_body=lambda _length: request.body,
                                     record=_record, schedule=_drain_on_commit)
    if error:
        return JsonResponse({"error": error}, status=status)
    return HttpResponse(status=status)
