"""Readable diffs between segment versions: rule trees compared structurally, settings value by value."""
import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segments.engine.diff import rules_diff, settings_diff
from segments.engine.rules import RULES_VERSION, describe, parse

PROPERTY = settings(database=None, deadline=None, max_examples=300, suppress_health_check=[HealthCheck.too_slow])


def doc(include, exclude=None):
    document = {"version": RULES_VERSION, "include": include}
    if exclude is not None:
        document["exclude"] = exclude
    return parse(document)


def cond(metric="orders_count", op="gte", value=3, **extra):
    return {"metric": metric, "op": op, "value": value, **extra}


ORDERS_3 = cond(window={"last_days": 90})
ORDERS_5 = cond(value=5, window={"last_days": 90})
SPENT = cond("total_spent", "gt", "200")
VIP = cond("has_tag", "is", True, params={"tag": "vip"})
SUBSCRIBED = cond("email_marketing", "eq", "subscribed")


def texts(before, after):
    return [(c["change"], c["path"], c["text"]) for c in rules_diff(before, after)]


# -- nothing changed -----------------------------------------------------------------------------
@pytest.mark.parametrize("document", [
    doc(ORDERS_3),
    doc({"all": [ORDERS_3, SPENT]}, exclude={"any": [VIP, {"not": SUBSCRIBED}]}),
    doc({"any": [{"all": [ORDERS_3, {"not": VIP}]}, SPENT]}),
])
def test_identical_documents_have_no_changes(document):
    assert rules_diff(document, document) == []
    assert rules_diff(document, parse(document.to_document())) == []


def test_documents_written_differently_but_canonically_equal_have_no_changes():
    before = doc({"all": [cond("total_spent", "gt", 200), cond("orders_count", "gte", 2, window={"months": [2, 1]})]})
    after = doc({"all": [cond("total_spent", "gt", "200.00"),
                         cond("orders_count", "gte", 2, window={"months": [1, 2], "years": 1})]})
    assert rules_diff(before, after) == []


# -- a new segment -------------------------------------------------------------------------------
def test_a_new_segment_is_one_created_entry():
    after = doc({"all": [ORDERS_3, SPENT]}, exclude=VIP)
    assert rules_diff(None, after) == [{"change": "created", "path": "", "text": describe(after),
                                        "after": after.to_document()}]
    assert rules_diff(None, after)[0]["text"] == (
        'Customers where Orders (last 90 days) is at least 3 and Total spent is above 200.00, '
        'except those where Has tag (tag "vip"): yes.')


# -- conditions changed in place -----------------------------------------------------------------
def test_a_changed_value_is_one_changed_entry_with_both_sides():
    changes = rules_diff(doc({"all": [ORDERS_3, SPENT]}), doc({"all": [ORDERS_5, SPENT]}))
    assert changes == [{"change": "changed", "path": "include.all[0]",
                        "text": "Orders (last 90 days): at least 3 → at least 5",
                        "before": ORDERS_3, "after": ORDERS_5}]


@pytest.mark.parametrize("before, after, text", [
    (ORDERS_3, cond(op="between", value=[3, 10], window={"last_days": 90}),
     "Orders (last 90 days): at least 3 → between 3 and 10"),
    (ORDERS_3, cond(op="lt", value=3, window={"last_days": 90}), "Orders (last 90 days): at least 3 → below 3"),
    (VIP, cond("has_tag", "is", False, params={"tag": "vip"}), 'Has tag (tag "vip"): yes → no'),
    (SUBSCRIBED, cond("email_marketing", "in", ["subscribed", "pending"]),
     'Email marketing consent: "subscribed" → one of "subscribed", "pending"'),
    (cond("last_order_date", "within_last_days", 30), cond("last_order_date", "before", "2026-01-01"),
     "Last order date: within the last 30 days → before 2026-01-01"),
    (SPENT, cond("total_spent", "gt", "250.5"), "Total spent: above 200.00 → above 250.50"),
    # the subject itself changed (window, parameters): both sides in full
    (ORDERS_3, cond(window={"last_days": 30}),
     "Orders (last 90 days) is at least 3 → Orders (last 30 days) is at least 3"),
    (ORDERS_3, cond(value=3), "Orders (last 90 days) is at least 3 → Orders is at least 3"),
    (VIP, cond("has_tag", "is", True, params={"tag": "wholesale"}),
     'Has tag (tag "vip"): yes → Has tag (tag "wholesale"): yes'),
    (cond("product_type_share", "gte", "0.5", params={"product_type": "Coffee"},
          window={"holiday": "christmas", "years": 2}),
     cond("product_type_share", "gte", "0.25", params={"product_type": "Coffee"},
          window={"holiday": "christmas", "years": 2}),
     'Product type share (product type "Coffee"; Christmas, last 2 years): at least 0.5 → at least 0.25'),
])
def test_changed_conditions_read_as_before_and_after(before, after, text):
    assert texts(doc(before), doc(after)) == [("changed", "include", text)]


def test_a_different_metric_in_the_same_place_is_removed_and_added():
    assert texts(doc({"all": [ORDERS_3, SPENT]}), doc({"all": [VIP, SPENT]})) == [
        ("removed", "include.all[0]", "Removed: Orders (last 90 days) is at least 3"),
        ("added", "include.all[0]", 'Added: Has tag (tag "vip"): yes'),
    ]


# -- conditions added, removed, moved ------------------------------------------------------------
def test_added_and_removed_conditions():
    assert texts(doc({"all": [ORDERS_3, SPENT]}), doc({"all": [ORDERS_3, SPENT, VIP]})) == [
        ("added", "include.all[2]", 'Added: Has tag (tag "vip"): yes')]
    assert texts(doc({"all": [ORDERS_3, SPENT, VIP]}), doc({"all": [ORDERS_3, VIP]})) == [
        ("removed", "include.all[1]", "Removed: Total spent is above 200.00")]


def test_an_insertion_at_the_front_shifts_nothing_else():
    assert texts(doc({"all": [ORDERS_3, SPENT, SUBSCRIBED]}), doc({"all": [VIP, ORDERS_3, SPENT, SUBSCRIBED]})) == [
        ("added", "include.all[0]", 'Added: Has tag (tag "vip"): yes')]


def test_an_insertion_and_an_edit_together():
    changes = rules_diff(doc({"all": [ORDERS_3, SPENT]}), doc({"all": [VIP, ORDERS_5, SPENT]}))
    assert [(c["change"], c["path"], c["text"]) for c in changes] == [
        ("added", "include.all[0]", 'Added: Has tag (tag "vip"): yes'),
        ("changed", "include.all[1]", "Orders (last 90 days): at least 3 → at least 5"),
    ]
    assert changes[1]["before_path"] == "include.all[0]"


def test_the_closest_condition_of_a_metric_is_the_one_edited():
    at_least, at_most = cond(op="gte", value=3), cond(op="lte", value=10)
    assert texts(doc({"all": [at_least, at_most]}), doc({"all": [cond(op="lte", value=12)]})) == [
        ("removed", "include.all[0]", "Removed: Orders is at least 3"),
        ("changed", "include.all[0]", "Orders: at most 10 → at most 12"),
    ]


def test_alternatives_in_an_any_group_say_so():
    assert texts(doc({"any": [ORDERS_3, SPENT]}), doc({"any": [ORDERS_3, VIP]})) == [
        ("removed", "include.any[1]", "Removed alternative: Total spent is above 200.00"),
        ("added", "include.any[1]", 'Added alternative: Has tag (tag "vip"): yes'),
    ]


def test_a_pure_reordering_is_one_note():
    assert texts(doc({"all": [ORDERS_3, SPENT, VIP]}), doc({"all": [VIP, ORDERS_3, SPENT]})) == [
        ("changed", "include", "Conditions reordered (who matches is unchanged)")]


def test_a_reordering_with_an_edit_reports_both():
    assert texts(doc({"all": [ORDERS_3, SPENT]}), doc({"all": [SPENT, ORDERS_5]})) == [
        ("changed", "include.all[1]", "Orders (last 90 days): at least 3 → at least 5"),
        ("changed", "include", "Conditions reordered (who matches is unchanged)"),
    ]


def test_duplicates_pair_one_for_one():
    assert texts(doc({"all": [ORDERS_3, ORDERS_3]}), doc({"all": [ORDERS_3]})) == [
        ("removed", "include.all[1]", "Removed: Orders (last 90 days) is at least 3")]


# -- groups --------------------------------------------------------------------------------------
def test_all_becoming_any_is_reported_before_its_children():
    assert texts(doc({"all": [ORDERS_3, SPENT]}), doc({"any": [ORDERS_5, SPENT]})) == [
        ("changed", "include", "Match any of these conditions instead of all of them"),
        ("changed", "include.any[0]", "Orders (last 90 days): at least 3 → at least 5"),
    ]
    change = rules_diff(doc({"any": [ORDERS_3, SPENT]}), doc({"all": [ORDERS_3, SPENT]}))
    assert change == [{"change": "changed", "path": "include", "before": "any", "after": "all",
                       "text": "Match all of these conditions instead of any of them"}]


def test_nested_groups_are_compared_in_place_with_their_paths():
    before = doc({"all": [ORDERS_3, {"any": [SPENT, VIP]}]})
    after = doc({"all": [ORDERS_3, {"any": [cond("total_spent", "gt", "300"), VIP, SUBSCRIBED]}]})
    assert texts(before, after) == [
        ("changed", "include.all[1].any[0]", "Total spent: above 200.00 → above 300.00"),
        ("added", "include.all[1].any[2]", 'Added alternative: Email marketing consent is "subscribed"'),
    ]


def test_a_nested_group_switching_kind():
    before = doc({"all": [ORDERS_3, {"any": [SPENT, VIP]}]})
    after = doc({"all": [ORDERS_3, {"all": [SPENT, VIP]}]})
    assert texts(before, after) == [
        ("changed", "include.all[1]", "Match all of these conditions instead of any of them")]


def test_a_whole_group_added_is_one_entry():
    assert texts(doc({"all": [ORDERS_3]}), doc({"all": [ORDERS_3, {"any": [SPENT, VIP]}]})) == [
        ("added", "include.all[1]", 'Added: Total spent is above 200.00 or Has tag (tag "vip"): yes')]


def test_wrapping_a_lone_condition_to_add_another_reads_as_one_addition():
    assert texts(doc(ORDERS_3), doc({"all": [ORDERS_3, VIP]})) == [
        ("added", "include.all[1]", 'Added: Has tag (tag "vip"): yes')]
    assert texts(doc({"any": [ORDERS_3, VIP]}), doc(ORDERS_5)) == [
        ("removed", "include.any[1]", 'Removed alternative: Has tag (tag "vip"): yes'),
        ("changed", "include", "Orders (last 90 days): at least 3 → at least 5"),
    ]


def test_wrapping_alone_is_a_note():
    changes = rules_diff(doc(ORDERS_3), doc({"all": [ORDERS_3]}))
    assert [(c["change"], c["path"], c["text"]) for c in changes] == [
        ("changed", "include", "Conditions regrouped (who matches is unchanged)")]
    assert changes[0]["after"] == {"all": [ORDERS_3]}


def test_a_condition_moved_into_a_nested_group():
    before = doc({"all": [ORDERS_3, SPENT]})
    after = doc({"all": [{"any": [ORDERS_3, VIP]}, SPENT]})
    assert texts(before, after) == [
        ("added", "include.all[0].any[1]", 'Added alternative: Has tag (tag "vip"): yes')]


# -- not and exclude -----------------------------------------------------------------------------
def test_changes_inside_not_say_so():
    assert texts(doc({"all": [ORDERS_3, {"not": VIP}]}), doc({"all": [ORDERS_3, {"not": {"any": [VIP, SPENT]}}]})) \
        == [("added", "include.all[1].not.any[1]", 'Added alternative inside "not": Total spent is above 200.00')]
    assert texts(doc({"not": ORDERS_3}), doc({"not": ORDERS_5})) == [
        ("changed", "include.not", 'Inside "not", Orders (last 90 days): at least 3 → at least 5')]
    # two nots cancel out
    assert texts(doc({"not": {"not": ORDERS_3}}), doc({"not": {"not": ORDERS_5}})) == [
        ("changed", "include.not.not", "Orders (last 90 days): at least 3 → at least 5")]


def test_a_condition_negated_is_removed_and_added():
    assert texts(doc(ORDERS_3), doc({"not": ORDERS_3})) == [
        ("removed", "include", "Removed: Orders (last 90 days) is at least 3"),
        ("added", "include", "Added: not (Orders (last 90 days) is at least 3)"),
    ]


def test_exclusions_added_removed_and_changed():
    rules = {"all": [ORDERS_3, SPENT]}
    assert rules_diff(doc(rules), doc(rules, exclude=VIP)) == [
        {"change": "added", "path": "exclude", "text": 'Added to exclusions: Has tag (tag "vip"): yes', "after": VIP}]
    assert rules_diff(doc(rules, exclude=VIP), doc(rules)) == [
        {"change": "removed", "path": "exclude", "text": 'Removed from exclusions: Has tag (tag "vip"): yes',
         "before": VIP}]
    assert texts(doc(rules, exclude={"any": [VIP, ORDERS_3]}), doc(rules, exclude={"any": [VIP, ORDERS_5]})) == [
        ("changed", "exclude.any[1]", "In exclusions, Orders (last 90 days): at least 3 → at least 5")]
    assert texts(doc(rules, exclude={"any": [VIP, ORDERS_3]}), doc(rules, exclude={"all": [VIP, ORDERS_3, SPENT]})) == [
        ("changed", "exclude", "In exclusions, match all of these conditions instead of any of them"),
        ("added", "exclude.all[2]", "Added to exclusions: Total spent is above 200.00"),
    ]
    assert texts(doc(rules, exclude={"not": ORDERS_3}), doc(rules, exclude={"not": ORDERS_5})) == [
        ("changed", "exclude.not", 'In exclusions, inside "not", Orders (last 90 days): at least 3 → at least 5')]


def test_include_and_exclude_changes_come_in_document_order():
    before = doc({"all": [ORDERS_3, SPENT]}, exclude=VIP)
    after = doc({"all": [ORDERS_5, SPENT]}, exclude=SUBSCRIBED)
    assert [c["path"] for c in rules_diff(before, after)] == ["include.all[0]", "exclude", "exclude"]
    assert [c["change"] for c in rules_diff(before, after)] == ["changed", "removed", "added"]


# -- settings ------------------------------------------------------------------------------------
SETTINGS = {"name": "VIP", "holdout_percent": 0, "group": None, "priority": 0, "status": "active"}


def test_identical_settings_have_no_changes():
    assert settings_diff(SETTINGS, dict(SETTINGS)) == []
    assert settings_diff({"group": None}, {"group": ""}) == []


def test_each_setting_reads_plainly():
    after = {"name": "Big spenders", "holdout_percent": 10, "group": "Tiers", "priority": 5, "status": "paused"}
    assert settings_diff(SETTINGS, after) == [
        {"change": "changed", "path": "name", "text": 'Name: "VIP" → "Big spenders"', "before": "VIP",
         "after": "Big spenders"},
        {"change": "changed", "path": "holdout_percent", "text": "Holdout: 0% → 10%", "before": 0, "after": 10},
        {"change": "changed", "path": "group", "text": 'Exclusive group: none → "Tiers"', "before": None,
         "after": "Tiers"},
        {"change": "changed", "path": "priority", "text": "Priority: 0 → 5", "before": 0, "after": 5},
        {"change": "changed", "path": "status", "text": "Status: active → paused", "before": "active",
         "after": "paused"},
    ]


def test_only_what_changed_and_other_keys_after_the_known_ones():
    changes = settings_diff(SETTINGS, {**SETTINGS, "holdout_percent": 20, "description": "Loyal ones",
                                       "group": "Tiers"})
    assert [c["text"] for c in changes] == ["Holdout: 0% → 20%", 'Exclusive group: none → "Tiers"',
                                            'Description: none → "Loyal ones"']
    assert [c["text"] for c in settings_diff({"group": "Tiers"}, {"group": None})] == [
        'Exclusive group: "Tiers" → none']


def test_settings_of_a_new_segment_and_values_json_cannot_carry():
    import datetime as dt
    from decimal import Decimal

    assert [c["text"] for c in settings_diff(None, {"name": "VIP", "holdout_percent": 5})] == [
        'Name: none → "VIP"', "Holdout: none → 5%"]
    changes = settings_diff({"threshold": Decimal("1.50")}, {"threshold": dt.date(2026, 1, 2)})
    assert changes == [{"change": "changed", "path": "threshold", "text": "Threshold: 1.50 → 2026-01-02",
                        "before": "1.50", "after": "2026-01-02"}]
    json.dumps(changes)


# -- properties over random edits ----------------------------------------------------------------
POOL = [ORDERS_3, ORDERS_5, SPENT, VIP, SUBSCRIBED, cond(window={"last_days": 30}),
        cond("total_spent", "between", ["10", "20"]), cond("has_tag", "is", False, params={"tag": "vip"})]


def nodes(levels):
    leaf = st.sampled_from(POOL)
    if levels == 1:
        return leaf
    inner = nodes(levels - 1)
    return st.one_of(leaf, st.lists(inner, min_size=1, max_size=4).map(lambda items: {"all": items}),
                     st.lists(inner, min_size=1, max_size=4).map(lambda items: {"any": items}),
                     inner.map(lambda node: {"not": node}))


documents = st.builds(lambda include, exclude: doc(include, exclude), nodes(3), st.one_of(st.none(), nodes(2)))

STEP = re.compile(r"\.?(all|any|not|include|exclude)(?:\[(\d+)\])?")


def at(document: dict, path: str):
    """The node a diff path names in a rule document."""
    node: object = document
    for key, index in STEP.findall(path):
        node = node[key]
        if index:
            node = node[int(index)]
    assert STEP.sub("", path) == "", path
    return node


@PROPERTY
@given(documents, documents)
def test_any_two_documents(before, after):
    changes = rules_diff(before, after)
    json.dumps(changes)                                             # storable as it is
    assert rules_diff(before, before) == [] and rules_diff(after, after) == []
    # no changes exactly when the documents are written the same way
    assert (changes == []) == (before.to_document() == after.to_document())
    b, a = before.to_document(), after.to_document()
    for change in changes:
        assert change["text"] and change["change"] in ("added", "removed", "changed")
        if change["change"] == "added":
            assert at(a, change["path"]) == change["after"]
        elif change["change"] == "removed":
            assert at(b, change["path"]) == change["before"]
        elif isinstance(change.get("after"), dict):                 # a node edited in place
            assert at(a, change["path"]) == change["after"]
            assert at(b, change.get("before_path", change["path"])) == change["before"]
            assert "→" in change["text"] or "regrouped" in change["text"]
