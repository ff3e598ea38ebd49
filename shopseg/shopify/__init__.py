"""Shopify integration with no models and no global state: signatures, tokens, OAuth, GraphQL.

Nothing here imports a Django app; callers pass secrets, base URLs and versions in.
"""
