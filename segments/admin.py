"""The operator's read-only view of tag changes, bulk tag syncs and backfills (Django admin), each
with "requeue failed" where a retry can help."""
from itertools import groupby

from django.contrib import admin, messages

from segments.membership.models import TagChange
from segments.mirror.models import BackfillStatus, ShopSync
from segments.tags.models import TagBulkOperation
from segments.tags.retry import RETRYABLE, tag_changes_retry
from shopseg.admin import ReadOnlyAdmin, short_error
from shopseg.enqueue import enqueue


@admin.register(TagChange)
class TagChangeAdmin(ReadOnlyAdmin):
    list_display = ("id", "shop", "customer_id", "tag", "add", "source", "result", "attempts", "created_at", "error")
    list_filter = ("result", "source", "add")
    list_select_related = ("shop",)
    raw_id_fields = ("customer", "segment", "bulk")
    actions = ["requeue_failed"]

    @admin.display(description="last error")
    def error(self, change: TagChange) -> str:
        return short_error(change.last_error)

    @admin.action(description="Requeue failed tag changes")
    def requeue_failed(self, request, queryset):
        failed = queryset.filter(processed_at__isnull=False, result__in=RETRYABLE).select_related("shop")
        done = 0
        for shop, changes in groupby(failed.order_by("shop_id", "pk"), key=lambda change: change.shop):
            done += tag_changes_retry(shop=shop, ids=[change.pk for change in changes])["retried"]
        self.message_user(request, f"{done} failed tag changes requeued.", messages.SUCCESS)


@admin.register(TagBulkOperation)
class TagBulkOperationAdmin(ReadOnlyAdmin):
    list_display = ("id", "shop", "add", "status", "line_count", "applied", "errors", "created_at", "finished_at",
                    "error_text")
    list_filter = ("status", "add")
    exclude = ("lines",)

    @admin.display(description="error")
    def error_text(self, op: TagBulkOperation) -> str:
        return short_error(op.error)


@admin.register(ShopSync)
class ShopSyncAdmin(ReadOnlyAdmin):
    list_display = ("shop", "backfill_status", "objects_total", "lines_done", "backfill_started_at",
                    "backfill_finished_at", "error", "last_reconcile_at")
    list_filter = ("backfill_status",)
    actions = ["requeue_failed"]

    @admin.display(description="error")
    def error(self, sync: ShopSync) -> str:
        return short_error(sync.backfill_error)

    @admin.action(description="Restart failed backfills")
    def requeue_failed(self, request, queryset):
        shops = list(queryset.filter(backfill_status=BackfillStatus.FAILED).values_list("shop_id", flat=True))
        for shop_id in shops:      # a failed backfill starts over; rows already loaded are upserted again
            enqueue("segments.mirror.tasks.backfill_start_task", shop_id)
        self.message_user(request, f"{len(shops)} failed backfills restarted.", messages.SUCCESS)
