"""Checks on a bulk operation's document before it runs, and the plan a bulk query's output follows.
Shopify's limits are enforced here with its own messages: a bulk query has one top-level field that is
not `node`/`nodes`, at most 5 connections nested at most 2 deep, and `id` on the parent of a nested
connection; a bulk mutation has exactly one mutation field, which may not start another bulk
operation or upload. `Plan` records, per selected field, whether it is a connection whose nodes become
their own JSONL lines or an object that stays inline in its parent's line.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    DocumentNode, FieldNode, GraphQLError, GraphQLSchema, OperationDefinitionNode, OperationType, get_named_type,
    is_abstract_type, is_leaf_type, parse, validate,
)
from graphql.execution.collect_fields import collect_fields, collect_sub_fields

from .cost import fragments_of, is_connection

MAX_CONNECTIONS = 5
MAX_CONNECTION_DEPTH = 2


@dataclass
class Plan:
    """How a selected field flattens into JSONL: connections become lines, objects stay inline."""

    connection: bool = False
    children: dict[str, Plan] = field(default_factory=dict)     # response key -> plan, for non-leaf keys
    node_paths: list[tuple[str, str | None]] = field(default_factory=list)  # (edges key, node key) / (nodes key, None)
    selects_id: bool = False
    nested: bool = True     # a connection somewhere below; False: its values go into the line as they are


def _plan(schema: GraphQLSchema, fragments: dict, type_: Any, nodes: list[FieldNode]) -> Plan:
    named = get_named_type(type_)
    if is_connection(named):
        plan = Plan(connection=True)
        for key, key_nodes in collect_sub_fields(schema, fragments, {}, named, nodes).items():
            name = key_nodes[0].name.value
            if name == "nodes":
                plan.node_paths.append((key, None))
                _merge(plan, _plan(schema, fragments, named.fields["nodes"].type, key_nodes))
            elif name == "edges":
                edge = get_named_type(named.fields["edges"].type)
                for inner_key, inner in collect_sub_fields(schema, fragments, {}, edge, key_nodes).items():
                    if inner[0].name.value == "node":
                        plan.node_paths.append((key, inner_key))
                        _merge(plan, _plan(schema, fragments, edge.fields["node"].type, inner))
        return plan
    plan = Plan()
    for runtime in (schema.get_possible_types(named) if is_abstract_type(named) else [named]):
        for key, key_nodes in collect_sub_fields(schema, fragments, {}, runtime, nodes).items():
            name = key_nodes[0].name.value
            if name == "id":
                plan.selects_id = True
            if name.startswith("__") or is_leaf_type(get_named_type(runtime.fields[name].type)):
                continue
            child = _plan(schema, fragments, runtime.fields[name].type, key_nodes)
            if key in plan.children:
                _merge(plan.children[key], child)
            else:
                plan.children[key] = child
    return plan


def _merge(into: Plan, other: Plan) -> None:
    into.selects_id = into.selects_id or other.selects_id
    for key, child in other.children.items():
        if key in into.children:
            _merge(into.children[key], child)
        else:
            into.children[key] = child


def _mark_nested(plan: Plan) -> bool:
    """Set `nested` bottom-up; True when a connection lies under (or is) this plan."""
    below = [_mark_nested(child) for child in plan.children.values()]
    plan.nested = any(below) or any(child.connection for child in plan.children.values())
    return plan.connection or plan.nested


def _connections(plan: Plan, depth: int = 0) -> Iterator[tuple[Plan, int]]:
    """Every connection in a plan with its nesting depth (1 = outermost)."""
    for child in plan.children.values():
        if child.connection:
            yield child, depth + 1
            yield from _connections(child, depth + 1)
        else:
            yield from _connections(child, depth)


def _single_operation(document: DocumentNode) -> OperationDefinitionNode | None:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    return operations[0] if len(operations) == 1 else None


def _root_fields(schema: GraphQLSchema, document: DocumentNode, operation: OperationDefinitionNode,
                 ) -> dict[str, list[FieldNode]]:
    root = schema.mutation_type if operation.operation == OperationType.MUTATION else schema.query_type
    assert root is not None
    return collect_fields(schema, fragments_of(document), {}, root, operation.selection_set)


def query_plan(schema: GraphQLSchema, text: str) -> tuple[DocumentNode | None, Plan | None, list[str]]:
    """Parse and check a bulk query. Returns (document, plan of the root field, error messages)."""
    try:
        document = parse(text)
    except GraphQLError as exc:
        return None, None, [f"Invalid bulk query: {exc.message}"]
    errors = [e.message for e in validate(schema, document)]
    if errors:
        return None, None, errors
    operation = _single_operation(document)
    if operation is None or operation.operation != OperationType.QUERY:
        return None, None, ["Bulk queries must contain exactly one query operation."]
    if operation.variable_definitions:
        return None, None, ["Bulk queries cannot use variables."]
    roots = _root_fields(schema, document, operation)
    if len(roots) != 1:
        return None, None, ["Bulk queries must contain exactly one top-level field."]
    key, nodes = next(iter(roots.items()))
    name = nodes[0].name.value
    if name in ("node", "nodes"):
        return None, None, [f"Bulk queries cannot contain a top level `{name}` field."]
    assert schema.query_type is not None
    field_type = schema.query_type.fields[name].type
    if is_leaf_type(get_named_type(field_type)):
        return None, None, ["Bulk queries must contain at least one connection."]
    root = Plan(children={key: _plan(schema, fragments_of(document), field_type, nodes)})
    _mark_nested(root)
    found = list(_connections(root))
    if not found:
        return None, None, ["Bulk queries must contain at least one connection."]
    if len(found) > MAX_CONNECTIONS:
        return None, None, [f"Bulk queries cannot contain more than {MAX_CONNECTIONS} connections."]
    if max(depth for _, depth in found) > MAX_CONNECTION_DEPTH:
        return None, None, [f"Bulk queries cannot contain connections with a nesting depth greater than "
                            f"{MAX_CONNECTION_DEPTH}."]
    for connection, _ in found:
        if any(child.connection for child in connection.children.values()) and not connection.selects_id:
            return None, None, ["The parent of a nested connection must select the `id` field."]
    return document, root, []


NOT_BULKABLE = {"bulkOperationRunQuery", "bulkOperationRunMutation", "bulkOperationCancel", "stagedUploadsCreate"}


def mutation_document(schema: GraphQLSchema, text: str) -> tuple[DocumentNode | None, list[str]]:
    try:
        document = parse(text)
    except GraphQLError as exc:
        return None, [f"Failed to parse the mutation - {exc.message}"]
    errors = [e.message for e in validate(schema, document)]
    if errors:
        return None, errors
    operation = _single_operation(document)
    if operation is None or operation.operation != OperationType.MUTATION:
        return None, ["Bulk mutations must contain exactly one mutation operation."]
    roots = _root_fields(schema, document, operation)
    if len(roots) != 1:
        return None, ["Bulk mutations must contain exactly one top-level field."]
    name = next(iter(roots.values()))[0].name.value
    if name in NOT_BULKABLE:
        return None, [f"{name} can't be run as a bulk mutation."]
    return document, []
