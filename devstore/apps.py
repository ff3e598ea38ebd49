from django.apps import AppConfig


class DevstoreConfig(AppConfig):
    """Registered only so `manage.py devstore` exists; devstore has no Django models."""

    name = "devstore"
    label = "devstore"
    verbose_name = "devstore (local Shopify)"
