from django.apps import AppConfig
from django.db.backends.signals import connection_created


class SegmentsConfig(AppConfig):
    name = "segments"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from segments.services import tag_bulk  # noqa: F401 - registers its eraser for customers/redact
        from segments.services.membership import register_sqlite_functions

        connection_created.connect(register_sqlite_functions, dispatch_uid="shopseg-sqlite-functions")
