"""devstore serves Shopify's Admin schema, not a guess: everything its SDL declares is Shopify's, as
Shopify declares it in the pinned API version (tests/shopify/schema/, see PROVENANCE.md there).

devstore declares a subset of Shopify's schema. Each type it declares exists in Shopify's with the
same kind; each field with the same type (non-null and list wrappers included) and the same
deprecated-or-not; each argument and input field with the same type and default; every argument or
input field Shopify requires is declared; enums, unions and interfaces hold only what Shopify's do.
So a document valid against devstore is valid against Shopify (the rules graphql-core validates
with only look at what a document uses), and a test that passes against devstore does not pass on
a field, argument, enum value or default Shopify lacks. devstore keeps no test-only extensions;
if one is ever needed it cannot go into this SDL, since this test refuses it.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.conf import settings
from graphql import (
    GraphQLArgument,
    GraphQLEnumType,
    GraphQLInputField,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLUnionType,
    build_schema,
    is_non_null_type,
    is_specified_directive,
    is_specified_scalar_type,
    print_ast,
)
from graphql.pyutils import Undefined
from graphql.utilities import ast_from_value

from devstore.graphql_api import SCHEMA_PATH, build_admin_schema
from tests.shopify.admin_schema import shopify_admin_schema


def _default(value: GraphQLArgument | GraphQLInputField) -> str:
    if value.default_value is Undefined:
        return "none"
    node = ast_from_value(value.default_value, value.type)
    return print_ast(node) if node is not None else "null"


def _required(value: GraphQLArgument | GraphQLInputField) -> bool:
    return is_non_null_type(value.type) and value.default_value is Undefined


def _deprecation(where: str, ours: Any, theirs: Any) -> list[str]:
    """Deprecated or not as Shopify's (the reasons' wording is not compared)."""
    if (ours.deprecation_reason is None) == (theirs.deprecation_reason is None):
        return []
    return [f"{where}: deprecated is {ours.deprecation_reason is not None}, in Shopify's "
            f"{theirs.deprecation_reason is not None} ({theirs.deprecation_reason})"]


def _inputs(where: Callable[[str], str], ours: dict[str, Any], theirs: dict[str, Any]) -> list[str]:
    """The arguments of a field, or the fields of an input object (`where` names one)."""
    found = []
    for name, value in ours.items():
        shopify = theirs.get(name)
        if shopify is None:
            found.append(f"{where(name)}: not in Shopify's schema")
            continue
        if str(value.type) != str(shopify.type):
            found.append(f"{where(name)}: {value.type}, Shopify's is {shopify.type}")
        if _default(value) != _default(shopify):
            found.append(f"{where(name)}: default {_default(value)}, Shopify's is {_default(shopify)}")
        found += _deprecation(where(name), value, shopify)
    found += [f"{where(name)}: Shopify requires it ({shopify.type}); devstore does not declare it"
              for name, shopify in theirs.items() if name not in ours and _required(shopify)]
    return found


def _type_differences(ours: GraphQLNamedType, theirs: GraphQLNamedType) -> list[str]:
    name = ours.name
    if type(ours) is not type(theirs):
        return [f"{name}: a {type(ours).__name__}, Shopify's is a {type(theirs).__name__}"]
    found = []
    if isinstance(ours, GraphQLEnumType):
        assert isinstance(theirs, GraphQLEnumType)
        for value_name, value in ours.values.items():
            if value_name not in theirs.values:
                found.append(f"{name}.{value_name}: not a value of Shopify's enum")
            else:
                found += _deprecation(f"{name}.{value_name}", value, theirs.values[value_name])
    if isinstance(ours, GraphQLUnionType):
        assert isinstance(theirs, GraphQLUnionType)
        members = {t.name for t in theirs.types}
        found += [f"{name}: {t.name} is not a member of Shopify's union" for t in ours.types if t.name not in members]
    if isinstance(ours, (GraphQLObjectType, GraphQLInterfaceType)):
        assert isinstance(theirs, (GraphQLObjectType, GraphQLInterfaceType))
        interfaces = {i.name for i in theirs.interfaces}
        found += [f"{name}: Shopify's does not implement {i.name}" for i in ours.interfaces if i.name not in interfaces]
        for field_name, field in ours.fields.items():
            shopify = theirs.fields.get(field_name)
            if shopify is None:
                found.append(f"{name}.{field_name}: not in Shopify's schema")
                continue
            if str(field.type) != str(shopify.type):
                found.append(f"{name}.{field_name}: {field.type}, Shopify's is {shopify.type}")
            found += _deprecation(f"{name}.{field_name}", field, shopify)
            found += _inputs(lambda arg, field_name=field_name: f"{name}.{field_name}({arg})", field.args,
                             shopify.args)
    if isinstance(ours, GraphQLInputObjectType):
        assert isinstance(theirs, GraphQLInputObjectType)
        found += _inputs(lambda input_field: f"{name}.{input_field}", ours.fields, theirs.fields)
    return found


def schema_differences(devstore: GraphQLSchema, shopify: GraphQLSchema) -> list[str]:
    """What devstore's schema declares that Shopify's does not, or declares otherwise."""
    found = []
    for root in ("query_type", "mutation_type", "subscription_type"):
        ours, theirs = getattr(devstore, root), getattr(shopify, root)
        if ours is not None and (theirs is None or ours.name != theirs.name):
            found.append(f"schema {root}: {ours.name}, Shopify's is {theirs.name if theirs else 'none'}")
    for name, ours in devstore.type_map.items():
        if name.startswith("__") or is_specified_scalar_type(ours):
            continue
        theirs = shopify.type_map.get(name)
        if theirs is None:
            found.append(f"{name}: not in Shopify's schema")
            continue
        found += _type_differences(ours, theirs)
    shopify_directives = {d.name for d in shopify.directives}
    found += [f"@{d.name}: not a directive of Shopify's schema" for d in devstore.directives
              if not is_specified_directive(d) and d.name not in shopify_directives]
    return found


@pytest.fixture(scope="module")
def shopify_schema() -> GraphQLSchema:
    return shopify_admin_schema(settings.SHOPIFY_API_VERSION)


@pytest.fixture(scope="module")
def sdl() -> str:
    return SCHEMA_PATH.read_text()


def test_devstore_declares_only_what_shopify_declares(shopify_schema: GraphQLSchema, sdl: str) -> None:
    assert schema_differences(build_schema(sdl), shopify_schema) == []


def test_the_served_schema_is_the_checked_sdl(shopify_schema: GraphQLSchema) -> None:
    """The endpoint serves the SDL file checked above, with resolvers bound and nothing added."""
    served = build_admin_schema()
    assert set(served.type_map) == set(build_schema(SCHEMA_PATH.read_text()).type_map)
    assert schema_differences(served, shopify_schema) == []


# Each a (what devstore's SDL reads, a plausible guess to plant instead, the difference reported).
PLANTED = [
    ("query: String, sortKey: OrderSortKeys = PROCESSED_AT", "query: String, sortKey: OrderSortKeys = ID",
     "QueryRoot.orders(sortKey): default ID, Shopify's is PROCESSED_AT"),
    ("type AbandonedCheckoutLineItem implements Node {\n  id: ID!\n  title: String\n",
     "type AbandonedCheckoutLineItem implements Node {\n  id: ID!\n  title: String!\n",
     "AbandonedCheckoutLineItem.title: String!, Shopify's is String"),
    ("type BulkOperationCancelPayload {\n  bulkOperation: BulkOperation\n  userErrors: [UserError!]!",
     "type BulkOperationCancelPayload {\n  bulkOperation: BulkOperation\n  userErrors: [BulkOperationUserError!]!",
     "BulkOperationCancelPayload.userErrors: [BulkOperationUserError!]!, Shopify's is [UserError!]!"),
    ("arn: ARN!", "arn: String!", "WebhookEventBridgeEndpoint.arn: String!, Shopify's is ARN!"),
    ("  CUSTOMERS_UPDATE\n", "  CUSTOMERS_UPDATE\n  CUSTOMERS_REDACT\n",
     "WebhookSubscriptionTopic.CUSTOMERS_REDACT: not a value of Shopify's enum"),
    ("tagsAdd(id: ID!, tags: [String!]!)", "tagsAdd(id: ID!)",
     "Mutation.tagsAdd(tags): Shopify requires it ([String!]!); devstore does not declare it"),
    ("  httpMethod: StagedUploadHttpMethodType = PUT\n", "  httpMethod: StagedUploadHttpMethodType = POST\n",
     "StagedUploadInput.httpMethod: default POST, Shopify's is PUT"),
    ("  partnerDevelopment: Boolean!\n", "  partnerDevelopment: Boolean!\n  devstoreSeed: Int\n",
     "ShopPlan.devstoreSeed: not in Shopify's schema"),
    ("type ShopPlan {", "interface ShopPlan {", "ShopPlan: a GraphQLInterfaceType, Shopify's is a GraphQLObjectType"),
    ('STD @deprecated(reason: "Use `STN` instead.") STN', "STD STN",
     "CurrencyCode.STD: deprecated is False, in Shopify's True"),
    ("WebhookHttpEndpoint | WebhookPubSubEndpoint\n", "WebhookHttpEndpoint | WebhookPubSubEndpoint | ShopPlan\n",
     "WebhookSubscriptionEndpoint: ShopPlan is not a member of Shopify's union"),
    ('currentBulkOperation(type: BulkOperationType = QUERY): BulkOperation @deprecated(reason: "Use `bulkOperations` '
     'with status filter instead.")', "currentBulkOperation(type: BulkOperationType = QUERY): BulkOperation",
     "QueryRoot.currentBulkOperation: deprecated is False, in Shopify's True"),
]


@pytest.mark.parametrize(("present", "planted", "reported"), PLANTED, ids=[p[2].split(":")[0] for p in PLANTED])
def test_a_planted_difference_is_reported(shopify_schema: GraphQLSchema, sdl: str, present: str, planted: str,
                                          reported: str) -> None:
    assert sdl.count(present) == 1, f"devstore's SDL no longer reads {present!r}: update the planted case"
    found = schema_differences(build_schema(sdl.replace(present, planted)), shopify_schema)
    assert len(found) == 1 and found[0].startswith(reported), found
