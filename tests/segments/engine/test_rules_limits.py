"""Rule documents: the limits on nesting, conditions, size and lists, the reference's examples, and
properties over generated documents."""
import datetime as dt
import json
import math
import re
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from segments.engine.registry import METRICS, TYPE_BOUNDS
from segments.engine.rules import (
    EARLIEST_DATE, LATEST_DATE, MAX_PROBLEMS, RULES_VERSION, Problem, RuleError, conditions, describe, parse,
)
from segments.engine.rules.tree import MAX_CONDITIONS, MAX_DEPTH, MAX_DOCUMENT_BYTES, MAX_ID, MAX_LIST_ITEMS, MAX_STRING
from segments.engine.windows import HOLIDAYS
from tests.segments.engine.test_rules import PROPERTY, cond, doc, only_problem, problems


def nested(levels):
    node = cond()
    for _ in range(levels - 1):
        node = {"all": [node]}
    return node


def test_nesting_up_to_the_limit_parses():
    rules = parse(doc(nested(MAX_DEPTH)))
    assert len(list(conditions(rules))) == 1


def test_nesting_past_the_limit_is_refused_at_the_first_level_too_deep():
    path = "include" + ".all[0]" * MAX_DEPTH
    assert only_problem(doc(nested(MAX_DEPTH + 1))) == (
        path, f"nested too deeply: at most {MAX_DEPTH} levels of groups and conditions")
    chain = cond()
    for _ in range(MAX_DEPTH):
        chain = {"not": chain}
    assert only_problem(doc(chain))[0] == "include" + ".not" * MAX_DEPTH


def test_conditions_up_to_the_limit_parse():
    half = MAX_CONDITIONS // 2
    rules = parse(doc({"all": [cond()] * half}, exclude={"any": [cond()] * (MAX_CONDITIONS - half)}))
    assert len(list(conditions(rules))) == MAX_CONDITIONS


def test_conditions_past_the_limit_are_refused_across_include_and_exclude():
    half = MAX_CONDITIONS // 2
    document = doc({"all": [cond()] * half}, exclude={"any": [cond()] * (MAX_CONDITIONS - half + 1)})
    assert only_problem(document) == ("", f"has {MAX_CONDITIONS + 1} conditions; at most {MAX_CONDITIONS} are allowed")


def test_the_condition_limit_comes_first_among_problems():
    document = doc({"all": [cond(value=-1)] * (MAX_CONDITIONS + 1)})
    found = problems(document)
    assert found[0] == ("", f"has {MAX_CONDITIONS + 1} conditions; at most {MAX_CONDITIONS} are allowed")
    assert len(found) == MAX_PROBLEMS


def test_documents_over_64_kb_are_refused_before_anything_else():
    values = [f"channel-{i:03d}-" + "x" * 200 for i in range(MAX_LIST_ITEMS)]
    document = doc(cond("source_channel", "in", values))
    size = len(json.dumps(document, separators=(",", ":")).encode())
    assert size > MAX_DOCUMENT_BYTES
    assert only_problem(document) == ("", f"is {size} bytes as JSON; at most {MAX_DOCUMENT_BYTES} are allowed")


def test_size_is_counted_in_utf8_bytes_not_characters():
    # 200 three-byte characters per value: under 64 K characters, over 64 KB.
    values = [f"{i:03d}" + "€" * 200 for i in range(110)]
    document = doc(cond("source_channel", "in", values))
    assert len(json.dumps(document, ensure_ascii=False, separators=(",", ":"))) < MAX_DOCUMENT_BYTES
    assert only_problem(document)[0] == ""


@pytest.mark.parametrize("document", [
    doc(cond(value=float("nan"))),
    doc(cond(value=math.inf)),
    doc(cond("source_channel", "in", {"web"})),
    doc(cond(value=dt.date(2026, 1, 1))),
    {("version",): 1},
])
def test_what_json_cannot_say_is_refused(document):
    assert only_problem(document) == ("", "must be JSON: objects, lists, strings, numbers, true, false and null")


def test_a_cyclic_document_is_refused():
    document = doc({"all": []})
    document["include"]["all"].append(document)
    assert only_problem(document)[0] == ""


def test_tuples_read_as_lists():
    assert parse(doc(cond(op="between", value=(1, 2)))).include.value == (1, 2)


def test_list_limit_allows_exactly_500():
    values = [str(i) for i in range(MAX_LIST_ITEMS)]
    assert len(parse(doc(cond("source_channel", "not_in", values))).include.value) == MAX_LIST_ITEMS


REFERENCE = Path(__file__).resolve().parents[3] / "docs" / "rules.md"


def reference_blocks(info):
    """The JSON code blocks of docs/rules.md fenced as ```<info>."""
    return [json.loads(block) for block in re.findall(rf"^```{info}\n(.*?)^```$", REFERENCE.read_text(), re.M | re.S)]


def test_the_references_examples_parse():
    examples = reference_blocks("json")
    assert len(examples) >= 10
    for example in examples:
        assert parse(example).to_document()


def test_the_references_refused_example_gives_the_problems_it_shows():
    [refused], [shown] = reference_blocks("json rejected"), reference_blocks("json problems")
    with pytest.raises(RuleError) as caught:
        parse(refused)
    assert [p.to_dict() for p in caught.value.problems] == shown


VOCABULARY = ["version", "include", "exclude", "all", "any", "not", "metric", "op", "value", "window", "params",
              "last_days", "between", "months", "holiday", "years", "product_type", "vendor", "product_id", "tag",
              *METRICS, *HOLIDAYS, "gt", "gte", "between", "in", "is", "before", "within_last_days"]
keys = st.sampled_from(VOCABULARY) | st.text(max_size=8)


scalars = (st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
           | st.sampled_from(VOCABULARY))


json_like = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=5), max_leaves=40)


# What a Python caller might pass that JSON cannot say.
python_like = st.recursive(
    scalars | st.decimals() | st.dates() | st.builds(object),
    lambda inner: st.tuples(inner, inner) | st.frozensets(st.integers(), max_size=2)
    | st.dictionaries(st.integers() | keys, inner, max_size=3),
    max_leaves=10)


near_documents = st.fixed_dictionaries({"version": st.just(1) | json_like, "include": json_like},
                                       optional={"exclude": json_like})


def check_parse_outcome(document):
    try:
        rules = parse(document)
    except RuleError as exc:
        assert exc.problems and all(isinstance(p, Problem) for p in exc.problems)
        assert len(exc.problems) <= MAX_PROBLEMS
    else:
        assert parse(rules.to_document()) == rules


@PROPERTY
@given(st.one_of(json_like, near_documents, python_like))
def test_parse_raises_nothing_but_rule_error(document):
    check_parse_outcome(document)


def decimal_values(value_type):
    bounds = TYPE_BOUNDS[value_type]
    return st.decimals(min_value=bounds.minimum, max_value=bounds.maximum, places=bounds.places,
                       allow_nan=False, allow_infinity=False)


def typed_values(metric):
    """Python values of the metric's type (sortable, for between)."""
    value_type = metric.value_type
    if value_type in ("count", "days", "score"):
        bounds = TYPE_BOUNDS[value_type]
        return st.integers(int(bounds.minimum), int(bounds.maximum))
    if value_type in ("money", "ratio", "number"):
        return decimal_values(value_type)
    if value_type == "date":
        return st.dates(EARLIEST_DATE, LATEST_DATE)
    if value_type == "state":
        return st.sampled_from(metric.choices)
    if value_type == "bool":
        return st.booleans()
    return st.text(min_size=1, max_size=MAX_STRING).filter(str.strip)


def as_json(value, draw):
    """One of the JSON spellings parse accepts for a typed value."""
    if isinstance(value, Decimal):
        return draw(st.sampled_from([str(value), float(value)] + ([int(value)] if value == int(value) else [])))
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


@st.composite
def values_for(draw, metric, op):
    if op == "is":
        return draw(st.booleans())
    if op == "within_last_days":
        return draw(st.integers(1, 3650))
    if op == "between":
        low, high = sorted(draw(st.lists(typed_values(metric), min_size=2, max_size=2)))
        return [as_json(low, draw), as_json(high, draw)]
    if op in ("in", "not_in"):
        items = draw(st.lists(typed_values(metric), min_size=1, max_size=4, unique=True))
        return [as_json(item, draw) for item in items]
    return as_json(draw(typed_values(metric)), draw)


month_sets = st.lists(st.integers(1, 12), min_size=1, max_size=12, unique=True)


windows = st.one_of(
    st.builds(lambda days: {"last_days": days}, st.integers(1, 3650)),
    st.lists(st.dates(EARLIEST_DATE, LATEST_DATE), min_size=2, max_size=2).map(
        lambda pair: {"between": [d.isoformat() for d in sorted(pair)]}),
    st.builds(lambda months, years: {"months": months, **years}, month_sets,
              st.just({}) | st.builds(lambda n: {"years": n}, st.integers(1, 10))),
    st.builds(lambda holiday, years: {"holiday": holiday, **years}, st.sampled_from(HOLIDAYS),
              st.just({}) | st.builds(lambda n: {"years": n}, st.integers(1, 10))),
)


PARAM_VALUES = {
    "text": st.text(min_size=1, max_size=MAX_STRING).filter(str.strip),
    "id": st.integers(1, MAX_ID),
    "months": month_sets,
    "holiday": st.sampled_from(HOLIDAYS),
}


@st.composite
def valid_conditions(draw):
    metric = draw(st.sampled_from(list(METRICS.values())))
    op = draw(st.sampled_from(metric.operators))
    condition = {"metric": metric.key, "op": op, "value": draw(values_for(metric, op))}
    if metric.windowed and draw(st.booleans()):
        condition["window"] = draw(windows)
    if metric.params:
        condition["params"] = {p.name: draw(PARAM_VALUES[p.type]) for p in metric.params}
    return condition


def valid_nodes(levels):
    if levels == 1:
        return valid_conditions()
    inner = valid_nodes(levels - 1)
    return st.one_of(
        valid_conditions(),
        st.lists(inner, min_size=1, max_size=3).map(lambda items: {"all": items}),
        st.lists(inner, min_size=1, max_size=3).map(lambda items: {"any": items}),
        inner.map(lambda item: {"not": item}),
    )


valid_documents = st.fixed_dictionaries({"version": st.just(RULES_VERSION), "include": valid_nodes(4)},
                                        optional={"exclude": valid_nodes(3)})


def objects_in(node):
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from objects_in(value)
    elif isinstance(node, list):
        for item in node:
            yield from objects_in(item)


@st.composite
def damaged_documents(draw):
    """A valid document with one key of one of its objects set to arbitrary JSON."""
    document = draw(valid_documents)
    target = draw(st.sampled_from(list(objects_in(document))))
    target[draw(keys)] = draw(json_like)
    return document


@PROPERTY
@given(damaged_documents())
def test_damaged_documents_raise_nothing_but_rule_error(document):
    check_parse_outcome(document)


@PROPERTY
@given(valid_documents)
def test_valid_documents_parse_and_round_trip(document):
    rules = parse(document)
    assert parse(rules.to_document()) == rules
    assert rules.to_document() == parse(rules.to_document()).to_document()
    assert describe(rules).startswith("Customers where ")


@PROPERTY
@given(valid_documents)
def test_to_document_is_plain_json(document):
    canonical = parse(document).to_document()
    text = json.dumps(canonical, allow_nan=False)
    assert json.loads(text) == canonical
    assert parse(json.loads(text)) == parse(document)
