from django.apps import AppConfig
from django.conf import settings


class SegmentsConfig(AppConfig):
    name = "segments"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from segments.privacy import storefront  # noqa: F401 - registers the storefront's privacy parts
        from shopseg.observability import opentelemetry_init

        # Here rather than in settings: instrumenting Django reads the settings it would be inside.
        if settings.OTEL_EXPORTER_OTLP_ENDPOINT:
            opentelemetry_init(settings.OTEL_EXPORTER_OTLP_ENDPOINT, service=settings.OTEL_SERVICE_NAME)
