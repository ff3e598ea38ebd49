"""The operator's Django admin is read-only: it shows the pipeline's rows, and its only writes are
each model's "requeue failed" action, which goes through the same service the product uses."""
from django.contrib import admin


class ReadOnlyAdmin(admin.ModelAdmin):
    list_per_page = 50
    show_full_result_count = False      # no count(*) over a large table on every page

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
