"""The GraphQL documents the app sends select no field its pinned API version deprecates.

Deprecations are read from devstore's SDL (devstore/admin_schema.graphql), which marks
Shopify's `@deprecated` fields with Shopify's reasons. Every document is found where the app keeps
it: module-level strings of the modules that talk to Shopify, and the `query` of their resource and
stage tables (reconciliation, history import).
"""
from __future__ import annotations

import importlib

from graphql import DocumentNode, GraphQLError, OperationDefinitionNode, parse, validate
from graphql.validation import NoDeprecatedCustomRule

from devstore.graphql_api import build_admin_schema

MODULES = ("segments.mirror.graphql", "segments.shops.install", "segments.mirror.backfill_plan",
           "segments.shops.bulk_operations", "segments.mirror.reconcile", "segments.tags.transport", "segments.tags.bulk",
           "segments.tags.metafield", "segments.tags.drift",
           "segments.shops.subscriptions")
# Deprecated fields still selected, each waiting for a change to a file another change owns: install.py's
# ShopDetails, and segments.mirror.graphql.CUSTOMER_FIELDS, which moves together with reconcile.py's
# customer page size (see CUSTOMER_FIELDS). An entry goes when its document moves off the field.
def _documents(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, (tuple, list)):
        return [item.query for item in value if isinstance(getattr(item, "query", None), str)]
    return []


def app_documents() -> list[tuple[str, str, OperationDefinitionNode]]:
    """(module, operation name, operation) for every operation the modules hold."""
    found = []
    for name in MODULES:
        module = importlib.import_module(name)
        for value in vars(module).values():
            for text in _documents(value):
                try:
                    document = parse(text)
                except GraphQLError:
                    continue        # a string that is not a GraphQL document
                found += [(name, op.name.value if op.name else "", op) for op in document.definitions
                          if isinstance(op, OperationDefinitionNode)]
    return found


def deprecated_uses() -> set[tuple[str, str, str]]:
    schema = build_admin_schema()
    uses = set()
    for module, operation, node in app_documents():
        for error in validate(schema, DocumentNode(definitions=(node,)), [NoDeprecatedCustomRule]):
            # "The field ShopPlan.displayName is deprecated. Use `publicDisplayName` instead."
            uses.add((module, operation, error.message.split()[2]))
    return uses


def test_the_documents_are_found():
    operations = {(module, operation) for module, operation, _ in app_documents()}
    assert ("segments.shops.install", "ShopDetails") in operations
    assert ("segments.mirror.reconcile", "Changed") in operations       # its resource table
    backfill = ("segments.mirror.backfill_plan", "segments.shops.bulk_operations")
    assert sum(module in backfill for module, _ in operations) >= 3


def test_no_document_selects_a_deprecated_field():
    assert deprecated_uses() == set()


def test_deprecations_are_seen():
    """devstore marks the fields issue 17 names, so a document selecting them is caught."""
    schema = build_admin_schema()
    document = parse("{ shop { plan { displayName } } customers(first: 1) { nodes { "
                     "defaultPhoneNumber { marketingState } } } }")
    messages = sorted(error.message for error in validate(schema, document, [NoDeprecatedCustomRule]))
    assert [m.split()[2] for m in messages] == ["CustomerPhoneNumber.marketingState", "ShopPlan.displayName"]


def test_the_phone_consent_is_read_from_the_replacement_and_from_the_deprecated_field():
    from segments.mirror.graphql import customer_record

    def sms(phone: dict) -> str:
        node = {"id": "gid://shopify/Customer/1", "updatedAt": "2026-11-20T10:00:00Z", "defaultPhoneNumber": phone}
        return customer_record(node).sms_marketing

    assert sms({"phoneNumber": "+15550000000", "smsMarketingConsent": {"state": "SUBSCRIBED"}}) == "subscribed"
    # the consent object's enum names a consent never given NEVER_SUBSCRIBED
    assert sms({"phoneNumber": "+15550000000", "smsMarketingConsent": {"state": "NEVER_SUBSCRIBED"}}) == (
        "not_subscribed")
    assert sms({"phoneNumber": "+15550000000", "marketingState": "UNSUBSCRIBED"}) == "unsubscribed"
    assert sms(None) == "unknown"
