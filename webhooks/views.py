"""POST /webhooks/shopify: verify, record, answer. No business logic here."""
from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from segments.services.shopify_api import app_secrets
from shopseg.enqueue import enqueue_on_commit
from shopseg.shopify.signatures import webhook_hmac_valid
from webhooks.models import EventStatus
from webhooks.services import DeliveryInvalid, delivery_parse, webhook_event_record
from webhooks.tasks import webhook_event_process_task


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
    # 2. the headers and the JSON
    try:
        delivery = delivery_parse(headers=request.headers, body=body)
    except DeliveryInvalid as exc:
        return _error(400, str(exc))
    # 3. record once; 4. process after commit
    recorded = webhook_event_record(delivery=delivery)
    if recorded is not None and recorded[1] == EventStatus.PENDING:
        enqueue_on_commit(webhook_event_process_task, recorded[0])
    # 5. answer fast
    return HttpResponse(status=200)
