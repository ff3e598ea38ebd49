"""The checks of tests/shopify/test_admin_schema.py: a document the app sends, and what makes it invalid
for Shopify (its validation errors, its variables, the one operation Shopify picks, the bulk query
inside a bulkOperationRunQuery)."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode, ExecutableDefinitionNode, FieldNode, GraphQLError, GraphQLSchema, InlineFragmentNode,
    OperationDefinitionNode, OperationType, SelectionSetNode, StringValueNode, VariableNode, Visitor, get_named_type,
    parse, validate, visit,
)
from graphql.execution.values import get_variable_values


@dataclass(frozen=True)
class Case:
    """One document the app sends, and the variable sets it sends with it."""
    label: str
    document: str
    variables: tuple[dict[str, Any], ...] = ()


def as_document(text: str) -> DocumentNode | None:
    """The parsed document when `text` is an executable GraphQL document, else None. A `{ … }`
    shorthand query must select below its root fields: "{handle}" is a format string, not a query."""
    try:
        document = parse(text)
    except GraphQLError:
        return None
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if not operations or not all(isinstance(d, ExecutableDefinitionNode) for d in document.definitions):
        return None
    if text.lstrip().startswith("{") and not any(
            getattr(s, "selection_set", None) for op in operations for s in op.selection_set.selections):
        return None
    return document


def _where(error: GraphQLError) -> str:
    return f" (line {error.locations[0].line})" if error.locations else ""


def _single_operation(document: DocumentNode) -> OperationDefinitionNode | None:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    # The app sends no operationName, so Shopify needs exactly one operation to pick.
    return operations[0] if len(operations) == 1 else None


def _bulk_query_problems(schema: GraphQLSchema, text: str) -> list[str]:
    """Shopify's rules for a bulkOperationRunQuery document: a query without variables, with one
    to five connections nested at most two deep."""
    document = as_document(text)
    if document is None:
        return ["the bulk query does not parse as a GraphQL document"]
    errors = validate(schema, document)
    if errors:
        return [f"bulk query: {e.message}{_where(e)}" for e in errors]
    operation = _single_operation(document)
    if operation is None or operation.operation != OperationType.QUERY or operation.variable_definitions:
        return ["a bulk query must be one query operation without variables"]
    depths: list[int] = []

    def walk(selections: SelectionSetNode, parent: Any, depth: int) -> None:
        for selection in selections.selections:
            if isinstance(selection, InlineFragmentNode):
                inner = schema.get_type(selection.type_condition.name.value) if selection.type_condition else parent
                walk(selection.selection_set, inner, depth)
            elif isinstance(selection, FieldNode) and selection.name.value != "__typename":
                named = get_named_type(parent.fields[selection.name.value].type)
                here = depth + 1 if named.name.endswith("Connection") else depth
                if here > depth:
                    depths.append(here)
                if selection.selection_set is not None:
                    walk(selection.selection_set, named, here)

    walk(operation.selection_set, schema.query_type, 0)
    if not depths:
        return ["a bulk query needs at least one connection"]
    if len(depths) > 5 or max(depths) > 2:
        return [f"a bulk query may hold 5 connections nested 2 deep; this one has {len(depths)}, {max(depths)} deep"]
    return []


def _inner_documents(operation: OperationDefinitionNode, case: Case) -> Iterator[tuple[str, str]]:
    """("query" | "mutation", text) of the documents the case's bulk operations run."""
    runs = {"bulkOperationRunQuery": "query", "bulkOperationRunMutation": "mutation"}
    found: list[tuple[str, Any]] = []

    class Runs(Visitor):
        def enter_field(self, node: FieldNode, *_: Any) -> None:
            if node.name.value in runs:
                argument = next((a for a in node.arguments if a.name.value == runs[node.name.value]), None)
                found.append((runs[node.name.value], argument.value if argument else None))

    visit(operation, Runs())
    for kind, value in found:
        if isinstance(value, StringValueNode):
            yield kind, value.value
        elif isinstance(value, VariableNode):
            for variables in case.variables:
                if isinstance(variables.get(value.name.value), str):
                    yield kind, variables[value.name.value]


def problems_of(schema: GraphQLSchema, case: Case, known: dict[str, Case]) -> list[str]:
    """What Shopify's schema says against the case: its validation errors, its variables' coercion
    errors, and those of the documents its bulk operations run."""
    document = as_document(case.document)
    if document is None:
        try:
            parse(case.document)
        except GraphQLError as exc:
            return [f"does not parse: {exc.message}{_where(exc)}"]
        return ["is not an executable GraphQL document"]
    found = [f"{e.message}{_where(e)}" for e in validate(schema, document)]
    operation = _single_operation(document)
    if operation is None:
        return [*found, "must hold exactly one operation (the app sends no operationName)"]
    if found:
        return found
    definitions = operation.variable_definitions or ()
    if definitions and not case.variables:
        found.append("declares variables, but no values the app sends are registered (VARIABLES or BUILT)")
    if not definitions and any(case.variables):
        found.append("declares no variables, yet variables are registered for it")
    for n, variables in enumerate(case.variables if definitions else ()):
        coerced = get_variable_values(schema, definitions, variables)
        if isinstance(coerced, list):
            found += [f"variables #{n}: {e.message}" for e in coerced]
    for kind, text in _inner_documents(operation, case):
        if kind == "query":
            found += [f"in its bulk query {text[:60]!r}…: {p}" for p in _bulk_query_problems(schema, text)]
        elif text not in {c.document for c in known.values()}:
            found.append(f"runs a bulk mutation that is not one of the collected documents: {text[:60]!r}…")
        else:
            inner = next(c for c in known.values() if c.document == text)
            found += [f"in its bulk mutation {inner.label}: {p}" for p in problems_of(schema, inner, {})]
            run = _single_operation(as_document(text) or DocumentNode(definitions=()))
            if run is None or run.operation != OperationType.MUTATION or len(run.selection_set.selections) != 1:
                found.append(f"a bulk mutation must be one mutation of one field: {inner.label}")
    return found


# -- the tests -------------------------------------------------------------------------------------
