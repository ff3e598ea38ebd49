"""POST /webhooks/shopify: verify, record, answer. No business logic here."""
from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from segments.services.shopify_api import app_secrets
from shopseg.shopify.signatures import webhook_hmac_valid
from webhooks.models import EventStatus
from webhooks.services import DeliveryInvalid, delivery_parse, webhook_event_record
from webhooks.dispatch import drain_schedule


def _error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


@csrf_exempt
@require_POST
def receive(request: HttpRequest) -> HttpResponse:
    try:
        length = int(request.headers.get("Content-Length") or 0)
    except ValueError:
        return _error(400, "bad Content-Length")
    if length > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
        return _error(413, "payload too large")
    body = request.body
    # 1. the signature over the raw body, before anything else is looked at
    if not webhook_hmac_valid(body, request.headers.get("X-Shopify-Hmac-Sha256"), app_secrets()):
        return _error(401, "invalid signature")
    # 2. the headers and the JSON, 3. recorded once (a duplicate webhook id records nothing)
    try:
        delivery = delivery_parse(headers=request.headers, body=body)
        recorded = webhook_event_record(delivery=delivery, raw_body=body)
    except DeliveryInvalid as exc:
        return _error(400, str(exc))
    # 4. processing is scheduled after commit
    if recorded is not None and recorded[1] == EventStatus.PENDING:
        transaction.on_commit(drain_schedule)
    # 5. answer fast
    return HttpResponse(status=200)
