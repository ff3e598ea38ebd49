from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Plug this app into segments, which never imports it (models are loaded only now)."""
        from segments.shops.subscriptions import webhook_topics_register
        from segments.web.health import register_webhook_health
        from webhooks import privacy  # noqa: F401 - registers the deliveries' erasers, export and retention
        from webhooks.handlers import subscriptions
        from webhooks.health import webhook_health

        # The topics each shop is subscribed to are the ones this app handles (webhooks.handlers).
        webhook_topics_register(subscriptions())
        register_webhook_health(webhook_health)
