"""The tag naming contract: Shopify's characters and length, lower-case prefixes, holdout tags under
the prefix, and tags unique in the shop (case-insensitively)."""
from __future__ import annotations

import pytest

from segments.membership.models import Segment
from segments.shops.models import Shop
from segments.tags.models import holdout_tag_for, holdout_tag_problems, tag_key, tag_prefix_problems, tag_problems
from segments.tags.naming import segment_tag_problems, shop_tag_conflicts, shop_tag_settings_problems

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("tag, ok", [
    ("seg:vip", True), ("x" * 255, True), ("x" * 256, False), ("seg:a,b", False), (" seg:vip", False),
    ("", False), ("seg:\tvip", False), ("seg:vïp ünicode", True),
])
def test_tag_problems(tag, ok):
    assert (tag_problems(tag) == []) == ok


@pytest.mark.parametrize("prefix, ok", [
    ("seg:", True), ("aud-", True), ("shopseg/", True), ("Seg:", False), (":seg", False), ("seg ", False),
    ("seg,", False), ("", False), ("a" * 41, False),
])
def test_prefix_problems(prefix, ok):
    assert (tag_prefix_problems(prefix) == []) == ok


def test_holdout_tags():
    assert holdout_tag_for("seg:{handle}-control", "vip") == "seg:vip-control"
    assert holdout_tag_for("seg:holdout", "vip") == "seg:holdout"
    assert holdout_tag_problems("", "seg:") == []
    assert holdout_tag_problems("seg:{handle}-control", "seg:") == []
    assert holdout_tag_problems("control:{handle}", "seg:")          # outside the prefix: echo not ours
    assert holdout_tag_problems("seg:Holdout", "seg:")               # one spelling
    assert tag_key(" SEG:VIP ") == "seg:vip"


def test_segment_tags_are_unique_in_the_shop_case_insensitively():
    shop = Shop.objects.create(domain="naming.myshopify.com", holdout_tag="seg:{handle}-control")
    Segment.objects.create(shop=shop, name="VIP", handle="vip")
    assert segment_tag_problems(shop=shop, handle="vip")
    assert segment_tag_problems(shop=shop, handle="vip-control")    # the holdout tag of "vip"
    assert segment_tag_problems(shop=shop, handle="gold") == []
    vip = Segment.objects.get(handle="vip")
    assert segment_tag_problems(shop=shop, handle="vip", exclude_segment_id=vip.pk) == []
    # a clash that exists is reported on the shop's settings
    Segment.objects.create(shop=shop, name="VIP control", handle="vip-control")
    assert shop_tag_conflicts(shop=shop) == [
        "'seg:vip-control' is written for both the holdout of segment 'VIP' and segment 'VIP control'"]
    shop.drift_policy = "sometimes"
    assert shop_tag_settings_problems(shop=shop) == ["drift policy is one of repair, report"]


@pytest.mark.django_db
@pytest.mark.parametrize("handle, ok", [("vip", True), ("big-spenders-2", True), ("VIP", False), ("a--b", False),
                                        ("-a", False), ("a b", False), ("x" * 61, False), ("taken", False)])
def test_a_chosen_handle_is_used_as_it_is_or_refused(handle, ok):
    from segments.engine.rules import SettingsError
    from segments.membership.definitions import segment_create

    shop = Shop.objects.create(domain="naming.myshopify.com")
    rules = {"version": 1, "include": {"metric": "orders_count", "op": "gte", "value": 1}}
    segment_create(shop=shop, name="Taken", rules=rules)                 # derived handle "taken"
    if ok:
        assert segment_create(shop=shop, name="Other", rules=rules, handle=handle).tag == f"seg:{handle}"
    else:
        with pytest.raises(SettingsError) as refused:
            segment_create(shop=shop, name="Other", rules=rules, handle=handle)
        assert [p.path for p in refused.value.problems] == ["handle"]
        assert Segment.objects.filter(shop=shop).count() == 1
