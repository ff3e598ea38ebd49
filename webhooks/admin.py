"""The operator's read-only view of webhook deliveries (Django admin), with one action: requeue
the failed ones. Payloads are not shown: they are customer data."""
from django.contrib import admin, messages

from shopseg.admin import ReadOnlyAdmin, short_error
from webhooks.models import EventStatus, WebhookEvent
from webhooks.requeue import failed_deliveries_requeue


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyAdmin):
    list_display = ("id", "shop_domain", "topic", "status", "attempts", "received_at", "error")
    list_filter = ("status", "topic")
    search_fields = ("shop_domain", "webhook_id")
    exclude = ("payload",)
    actions = ["requeue_failed"]

    @admin.display(description="last error")
    def error(self, event: WebhookEvent) -> str:
        return short_error(event.last_error)

    @admin.action(description="Requeue failed deliveries")
    def requeue_failed(self, request, queryset):
        done = failed_deliveries_requeue(ids=queryset.filter(status=EventStatus.FAILED).values_list("pk", flat=True))
        self.message_user(request, f"{done} failed deliveries requeued.", messages.SUCCESS)
