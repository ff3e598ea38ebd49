from django.apps import AppConfig


class SegmentsConfig(AppConfig):
    name = "segments"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from segments.services import tag_bulk  # noqa: F401 - registers its eraser for customers/redact
