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

from collections.abc import Callable
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
)
from graphql.execution.values import get_argument_values
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


Select = Callable[[Any], dict]          # source object -> its selected fields
Complete = Callable[[Any], Any]         # a non-null value -> its response form


def _compile_object(parent: GraphQLObjectType, selection: SelectionSetNode, path: Path | None,
                    ctx: RequestContext) -> Select:
    """One function per selection set, prepared once per page: each field's read (its own resolver
    or the default dict read) and completion are chosen here, not re-decided for every value."""
    # (response key, field name, its resolver bound to info and arguments or None, info, arguments, completion)
    fields: list[tuple[str, str, Callable[[Any], Any] | None, Info | None, dict[str, Any], Complete | None]] = []
    for node in selection.selections:
        if not isinstance(node, FieldNode) or node.directives:
            raise Unsupported()
        name = node.name.value
        key = node.alias.value if node.alias else name
        if name == "__typename":
            fields.append((key, name, lambda source, typename=parent.name: typename, None, {}, None))
            continue
        field = parent.fields[name]
        # graphql-core's own coercion: arguments left out get the schema's defaults (QueryRoot.orders
        # sorts by PROCESSED_AT unless told otherwise), exactly as the graphql-core path sees them
        args = get_argument_values(field, node)
        # paths carry no list indices: resolvers only ask whether they are the root, and any error
        # sends the page to graphql-core, which reports exact paths
        field_path = Path(path, key, parent.name)
        info = Info(name, [node], field_path, ctx)
        resolve = field.resolve
        read = (lambda source, resolve=resolve, info=info, args=args: resolve(source, info, **args)) \
            if resolve is not None else None
        fields.append((key, name, read, info, args, _completer(field.type, node, field_path, ctx)))
    fields_ = tuple(fields)

    def select(source: Any) -> dict:
        result = {}
        get = source.get if isinstance(source, dict) else None
        for key, name, read, info, args, complete in fields_:
            if read is not None:
                value = read(source)
            else:   # graphql-core's default resolver: the dict key or attribute, called when callable
                value = get(name) if get is not None else getattr(source, name, None)
                if callable(value):
                    value = value(info, **args)
            result[key] = value if value is None or complete is None else complete(value)
        return result

    return select


def _completer(type_: Any, node: FieldNode, path: Path, ctx: RequestContext) -> Complete:
    if isinstance(type_, GraphQLNonNull):
        type_ = type_.of_type
    if isinstance(type_, GraphQLList):
        inner = _completer(type_.of_type, node, path, ctx)
        return lambda values: [None if v is None else inner(v) for v in values]
    named = get_named_type(type_)
    if is_leaf_type(named):
        return named.serialize
    if isinstance(named, GraphQLObjectType) and node.selection_set is not None:
        return _compile_object(named, node.selection_set, path, ctx)
    raise Unsupported()   # interfaces and unions need graphql-core's type resolution


def execute_bulk_page(schema: GraphQLSchema, document: DocumentNode, ctx: RequestContext) -> dict | None:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if len(operations) != 1 or len(document.definitions) != 1 or operations[0].variable_definitions:
        return None
    try:
        select = _compile_object(schema.query_type, operations[0].selection_set, None, ctx)
        return select(None)
    except (Unsupported, GraphQLError):
        return None
