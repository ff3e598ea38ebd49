from django.apps import AppConfig


class DevstoreConfig(AppConfig):
    """Registered only so `manage.py devstore` exists; devstore has no Django models."""

    name = "shopseg.devstore"
    label = "devstore"
    verbose_name = "devstore (local Shopify)"
