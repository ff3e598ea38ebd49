"""The operator's Django admin is read-only: it shows the pipeline's rows, and its only writes are
each model's "requeue failed" action, which goes through the same service the product uses."""
from django.contrib import admin

admin.site.site_header = admin.site.site_title = "shopseg operations"
admin.site.index_title = "The pipeline, read-only"
admin.site.enable_nav_sidebar = False      # the lists need the width


def short_error(text: str, most: int = 80) -> str:
    """An error as a list column shows it: its first line, cut at `most` characters."""
    first = (text or "").splitlines()[0] if text else ""
    return first if len(first) <= most else first[:most - 1] + "…"


class ReadOnlyAdmin(admin.ModelAdmin):
    list_per_page = 50
    show_full_result_count = False      # no count(*) over a large table on every page

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
