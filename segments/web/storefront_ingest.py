"""POST /storefront/events: the web pixel's batches (public: the shop's ingest key names the shop,
the caps and the strict reading in segments.storefront keep the rest out). Answers any origin (the
pixel runs in Shopify's sandbox, on the shop's own domains) and never sets or reads a cookie."""
from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from segments.storefront.batch import MAX_BODY_BYTES, batch_read
from segments.storefront.caps import CLIENT_WINDOW_SECONDS
from segments.storefront.ingest import batch_ingest
from shopseg.errors import Refused

CORS = {"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Methods": "POST, OPTIONS",
        "Access-Control-Allow-Headers": "Content-Type", "Access-Control-Max-Age": "86400"}


def _answer(body: dict | None, status: int, **headers: str) -> HttpResponse:
    response = JsonResponse(body, status=status) if body is not None else HttpResponse(status=status)
    for name, value in {**CORS, **headers}.items():
        response[name] = value
    return response


@csrf_exempt     # no cookie, no session: nothing a forged cross-site request could ride on
def storefront_events(request: HttpRequest) -> HttpResponse:
    if request.method == "OPTIONS":
        return _answer(None, 204)
    if request.method != "POST":
        return _answer(Refused(405, "method_not_allowed", "Send events with POST.").body(), 405, Allow="POST, OPTIONS")
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    try:
        if declared > MAX_BODY_BYTES:    # refused before reading a byte of it
            raise Refused(413, "payload_too_large", f"A batch is at most {MAX_BODY_BYTES // 1024} KB.")
        now = timezone.now()
        batch = batch_read(request.body, now=now)
        stored = batch_ingest(batch, now=now)
    except Refused as refused:
        retry = {"Retry-After": str(CLIENT_WINDOW_SECONDS)} if refused.status_code == 429 else {}
        return _answer(refused.body(), refused.status_code, **retry)
    return _answer({"received": len(batch.events), "stored": stored}, 202)
