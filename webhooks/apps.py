from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The topics each shop is subscribed to are the ones this app handles (webhooks.handlers).
        from segments.services.webhook_subscriptions import webhook_topics_register
        from webhooks.handlers import subscriptions

        webhook_topics_register(subscriptions())
