"""A lean executor for bulk query pages: the same resolvers and objects, without graphql-core's
per-field machinery.

A bulk export resolves millions of fields; graphql-core spends most of that time on bookkeeping
(awaitable checks, argument coercion, error paths) that a validated, variable-free, fragment-free
selection does not need. This walks the selection over the same dict objects and resolvers the
API uses, so the data is identical (a test compares the two). Anything it does not handle
(fragments, directives, variables, a resolver raising an error) returns None, and the caller runs
graphql-core for that page, which then reports errors exactly as before.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    GraphQLError,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    OperationDefinitionNode,
    SelectionSetNode,
    get_named_type,
    is_leaf_type,
    value_from_ast,
)
from graphql.pyutils import Path

from .graphql_context import RequestContext


class Unsupported(Exception):
    """The document or a resolver needs graphql-core (fragments, variables, errors)."""


@dataclass(frozen=True)
class Info:
    """The parts of GraphQLResolveInfo devstore's resolvers read."""

    field_name: str
    field_nodes: list[FieldNode]
    path: Path
    context: RequestContext


@dataclass(frozen=True)
class Step:
    """One selected field, prepared once per document: where it reads and how it completes."""

    key: str
    name: str
    node: FieldNode
    resolve: Any                  # the field's own resolver, or None for the default (dict) read
    args: dict[str, Any]
    type_: Any                    # the field's output type, wrappers included
    serialize: Any                # leaf types: their serializer; object types: None
    plan: Any                     # object types: the Plan of their selection


Plan = tuple[GraphQLObjectType, tuple[Step, ...]]


def _plan(parent: GraphQLObjectType, selection: SelectionSetNode) -> Plan:
    steps = []
    for node in selection.selections:
        if not isinstance(node, FieldNode) or node.directives:
            raise Unsupported()
        name = node.name.value
        key = node.alias.value if node.alias else name
        if name == "__typename":
            steps.append(Step(key, name, node, None, {}, None, None, None))
            continue
        field = parent.fields[name]
        args = {a.name.value: value_from_ast(a.value, field.args[a.name.value].type) for a in node.arguments or ()}
        named = get_named_type(field.type)
        if is_leaf_type(named):
            steps.append(Step(key, name, node, field.resolve, args, field.type, named.serialize, None))
        elif isinstance(named, GraphQLObjectType) and node.selection_set is not None:
            steps.append(Step(key, name, node, field.resolve, args, field.type, None,
                              _plan(named, node.selection_set)))
        else:
            raise Unsupported()   # interfaces and unions need graphql-core's type resolution
    return parent, tuple(steps)


def execute_bulk_page(schema: GraphQLSchema, document: DocumentNode, ctx: RequestContext) -> dict | None:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if len(operations) != 1 or len(document.definitions) != 1 or operations[0].variable_definitions:
        return None
    try:
        plan = _plan(schema.query_type, operations[0].selection_set)
        return _select(plan, None, None, ctx)
    except (Unsupported, GraphQLError):
        return None


def _select(plan: Plan, source: Any, path: Path | None, ctx: RequestContext) -> dict:
    parent, steps = plan
    result: dict[str, Any] = {}
    for step in steps:
        if step.name == "__typename":
            result[step.key] = parent.name
            continue
        if step.resolve is not None:
            field_path = Path(path, step.key, parent.name)
            value = step.resolve(source, Info(step.name, [step.node], field_path, ctx), **step.args)
        else:
            value = source.get(step.name) if isinstance(source, dict) else getattr(source, step.name, None)
            field_path = None
            if callable(value):
                field_path = Path(path, step.key, parent.name)
                value = value(Info(step.name, [step.node], field_path, ctx), **step.args)
        result[step.key] = _complete(step, step.type_, value, path, field_path, ctx)
    return result


def _complete(step: Step, type_: Any, value: Any, path: Path | None, field_path: Path | None,
              ctx: RequestContext) -> Any:
    if value is None:
        return None
    if isinstance(type_, GraphQLNonNull):
        type_ = type_.of_type
    if isinstance(type_, GraphQLList):
        return [_complete(step, type_.of_type, item, path, field_path, ctx) for item in value]
    if step.serialize is not None:
        return step.serialize(value)
    # nested resolvers only test whether they are the root, so the field's own path suffices
    return _select(step.plan, value, field_path or Path(path, step.key, step.plan[0].name), ctx)
