"""Calculated query cost: requested (static, before execution) and actual (from the returned data).

Rules, from https://shopify.dev/docs/apps/build/apis/graphql-admin/rate-limits ("Cost calculation") and
Shopify's engineering write-up of the model: scalars and enums cost 0, objects 1, interfaces and
unions the most expensive of their possible selections, a connection 2 plus (page size x the cost
of one node), and a mutation 10. A connection's page size is its `first`/`last` argument, at most
250. The requested cost sizes connections by the arguments; the actual cost by the nodes returned.
A single query may request at most 1000 points. Input arrays are limited to 250 items
(https://shopify.dev/docs/api/usage/limits).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    GraphQLError,
    GraphQLField,
    GraphQLObjectType,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    get_named_type,
    is_abstract_type,
    is_leaf_type,
    is_object_type,
)
from graphql.execution.collect_fields import collect_fields, collect_sub_fields
from graphql.execution.values import get_argument_values

MAX_QUERY_COST = 1000
MAX_PAGE_SIZE = 250
MAX_INPUT_ARRAY = 250
CONNECTION_COST = 2
OBJECT_COST = 1
MUTATION_COST = 10

FieldMap = dict[str, list[FieldNode]]


def is_connection(type_: Any) -> bool:
    """Relay connections are the types named *Connection with edges/nodes."""
    return (is_object_type(type_) and type_.name.endswith("Connection")
            and ("edges" in type_.fields or "nodes" in type_.fields))


def fragments_of(document: DocumentNode) -> dict[str, FragmentDefinitionNode]:
    return {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}


def root_type(schema: GraphQLSchema, operation: OperationDefinitionNode) -> GraphQLObjectType:
    root = schema.mutation_type if operation.operation == OperationType.MUTATION else schema.query_type
    assert root is not None
    return root


def max_cost_message(cost: int) -> str:
    # Shopify's wording, kept so clients that match on it behave the same against devstore.
    return (f"Query cost is {cost}, which exceeds the single query max cost limit ({MAX_QUERY_COST}).\n\n"
            "See https://shopify.dev/concepts/about-apis/rate-limits for more information on how the\n"
            "cost of a query is calculated.\n\n"
            "To query larger amounts of data with fewer limits, bulk operations should be used instead.\n"
            "See https://shopify.dev/tutorials/perform-bulk-operations-with-admin-api for usage details.\n")


@dataclass
class _Walk:
    schema: GraphQLSchema
    fragments: dict[str, FragmentDefinitionNode]
    variables: dict[str, Any]
    errors: list[GraphQLError] = field(default_factory=list)
    _seen: set[tuple[int, str]] = field(default_factory=set)

    def error(self, message: str, node: FieldNode, extensions: dict | None = None) -> None:
        # Abstract types are walked once per possible type; report each problem once.
        if (id(node), message) not in self._seen:
            self._seen.add((id(node), message))
            self.errors.append(GraphQLError(message, nodes=[node], extensions=extensions))

    def subfields(self, type_: GraphQLObjectType, nodes: list[FieldNode]) -> FieldMap:
        return collect_sub_fields(self.schema, self.fragments, self.variables, type_, nodes)

    def possible(self, type_: Any) -> Iterable[GraphQLObjectType]:
        return self.schema.get_possible_types(type_) if is_abstract_type(type_) else [type_]

    def arguments(self, field_def: GraphQLField, node: FieldNode) -> dict[str, Any]:
        args = get_argument_values(field_def, node, self.variables)
        for name, value in args.items():
            if isinstance(value, list) and len(value) > MAX_INPUT_ARRAY:
                self.error(f"The input array size of {len(value)} is greater than the maximum allowed of "
                           f"{MAX_INPUT_ARRAY}.", node,
                           {"code": "MAX_INPUT_SIZE_EXCEEDED", "maxInputSize": MAX_INPUT_ARRAY, "argumentName": name})
        return args

    def page_size(self, args: Mapping[str, Any], node: FieldNode) -> int:
        first, last = args.get("first"), args.get("last")
        if first is None and last is None:
            self.error("you must provide one of first or last", node)
            return MAX_PAGE_SIZE
        for name, value in (("first", first), ("last", last)):
            if value is not None and value > MAX_PAGE_SIZE:
                self.error(f"{name} cannot exceed {MAX_PAGE_SIZE}. To query larger amounts of data with fewer "
                           "limits, bulk operations should be used instead.", node)
        size = first if first is not None else last
        return max(0, min(int(size or 0), MAX_PAGE_SIZE))


class _Requested(_Walk):
    """Static cost: every connection is assumed to return a full page."""

    def selection(self, type_: GraphQLObjectType, fields: FieldMap) -> int:
        return sum(self.field(type_, nodes) for nodes in fields.values())

    def object(self, type_: Any, nodes: list[FieldNode]) -> int:
        return OBJECT_COST + max((self.selection(t, self.subfields(t, nodes)) for t in self.possible(type_)),
                                 default=0)

    def field(self, parent: GraphQLObjectType, nodes: list[FieldNode]) -> int:
        name = nodes[0].name.value
        if name.startswith("__"):
            return 0  # introspection and __typename are free
        field_def = parent.fields[name]
        args = self.arguments(field_def, nodes[0])
        named = get_named_type(field_def.type)
        if is_leaf_type(named):
            return 0
        if is_connection(named):
            size = self.page_size(args, nodes[0])
            return CONNECTION_COST + size * self.node(named, nodes)
        return self.object(named, nodes)

    def node(self, connection: GraphQLObjectType, nodes: list[FieldNode]) -> int:
        """Cost of one node of a connection, read from `edges { node }` and/or `nodes`."""
        best = 0
        for key_nodes in self.subfields(connection, nodes).values():
            name = key_nodes[0].name.value
            if name == "nodes":
                best = max(best, self.object(get_named_type(connection.fields["nodes"].type), key_nodes))
            elif name == "edges":
                edge = get_named_type(connection.fields["edges"].type)
                for inner in self.subfields(edge, key_nodes).values():
                    if inner[0].name.value == "node":
                        best = max(best, self.object(get_named_type(edge.fields["node"].type), inner))
        return best


class _Actual(_Walk):
    """Cost of what was returned: connections are sized by the nodes they hold."""

    def selection(self, type_: GraphQLObjectType, fields: FieldMap, value: Mapping[str, Any]) -> int:
        return sum(self.field(type_, nodes, value[key]) for key, nodes in fields.items() if key in value)

    def object(self, type_: Any, nodes: list[FieldNode], value: Any) -> int:
        if value is None:
            return OBJECT_COST  # the lookup happened and found nothing
        items = value if isinstance(value, list) else [value]
        best = 0
        for item in items:
            if isinstance(item, Mapping):
                # For an abstract type only the runtime type's keys are present, so the max picks it.
                best = max([best] + [self.selection(t, self.subfields(t, nodes), item) for t in self.possible(type_)])
        return OBJECT_COST + best

    def field(self, parent: GraphQLObjectType, nodes: list[FieldNode], value: Any) -> int:
        name = nodes[0].name.value
        if name.startswith("__"):
            return 0
        named = get_named_type(parent.fields[name].type)
        if is_leaf_type(named):
            return 0
        if is_connection(named):
            return CONNECTION_COST + (self.nodes_cost(named, nodes, value) if isinstance(value, Mapping) else 0)
        return self.object(named, nodes, value)

    def nodes_cost(self, connection: GraphQLObjectType, nodes: list[FieldNode], value: Mapping[str, Any]) -> int:
        best = 0
        for key, key_nodes in self.subfields(connection, nodes).items():
            name, items = key_nodes[0].name.value, value.get(key) or []
            if name == "nodes":
                node_type = get_named_type(connection.fields["nodes"].type)
                best = max(best, sum(self.object(node_type, key_nodes, item) for item in items))
            elif name == "edges":
                edge = get_named_type(connection.fields["edges"].type)
                for inner_key, inner in self.subfields(edge, key_nodes).items():
                    if inner[0].name.value == "node":
                        node_type = get_named_type(edge.fields["node"].type)
                        best = max(best, sum(self.object(node_type, inner, (e or {}).get(inner_key))
                                             for e in items))
        return best


@dataclass(frozen=True)
class Analysis:
    requested: int
    errors: list[GraphQLError]   # page-size and input-size violations, reported before execution


def analyze(schema: GraphQLSchema, document: DocumentNode, operation: OperationDefinitionNode,
            variables: dict[str, Any]) -> Analysis:
    """Requested cost of an operation with coerced variables, plus Shopify's argument limits."""
    walk = _Requested(schema, fragments_of(document), variables)
    root = root_type(schema, operation)
    fields = collect_fields(schema, walk.fragments, variables, root, operation.selection_set)
    if operation.operation == OperationType.MUTATION:
        for nodes in fields.values():
            walk.arguments(root.fields[nodes[0].name.value], nodes[0])
        return Analysis(MUTATION_COST * len(fields), walk.errors)
    return Analysis(walk.selection(root, fields), walk.errors)


def actual_cost(schema: GraphQLSchema, document: DocumentNode, operation: OperationDefinitionNode,
                variables: dict[str, Any], data: Mapping[str, Any] | None) -> int:
    """Cost of an executed operation, from the data it returned."""
    walk = _Actual(schema, fragments_of(document), variables)
    root = root_type(schema, operation)
    fields = collect_fields(schema, walk.fragments, variables, root, operation.selection_set)
    if operation.operation == OperationType.MUTATION:
        return MUTATION_COST * len(fields)
    data = data or {}
    return sum(walk.field(root, nodes, data.get(key)) for key, nodes in fields.items())
