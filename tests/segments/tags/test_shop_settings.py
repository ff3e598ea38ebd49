"""The merchant's settings: checked whole before anything is saved, and what a change implies done
(a new prefix rewrites every tag in Shopify, keeping the merchant's own)."""
import pytest

from segments.engine.rules import SettingsError
from segments.membership.models import TagChange
from segments.shops.models import Shop
from segments.shops.preferences import shop_settings, shop_settings_update
from segments.tags.sync import shop_tags_sync
from tests.segments.tags.conftest import ONE_ORDER

pytestmark = pytest.mark.django_db


def test_settings_read_with_their_allowed_values(installed_shop):
    settings = shop_settings(shop=installed_shop)
    assert settings["tag_prefix"] == "seg:" and settings["recompute_hour"] == 3
    assert settings["choices"]["drift_policy"] == ["repair", "report"]
    assert settings["ranges"]["recompute_hour"] == {"min": 0, "max": 23}


@pytest.mark.parametrize("changes, path", [
    ({"tag_prefix": "Seg:"}, "tag_prefix"),                  # upper case: look-alikes
    ({"tag_prefix": ""}, "tag_prefix"),
    ({"holdout_tag": "control-{handle}"}, "holdout_tag"),    # outside the prefix
])
def test_a_refused_value_saves_nothing(installed_shop, changes, path):
    before = Shop.objects.filter(pk=installed_shop.pk).values().get()
    with pytest.raises(SettingsError) as refused:
        shop_settings_update(shop=installed_shop, changes={"recompute_hour": 5, **changes})
    assert path in {p.path for p in refused.value.problems}
    assert Shop.objects.filter(pk=installed_shop.pk).values().get() == before
    assert not TagChange.objects.filter(shop=installed_shop).exists()


def test_plain_settings_change_without_touching_tags(installed_shop):
    result = shop_settings_update(shop=installed_shop, changes={"recompute_hour": 5, "drift_policy": "report",
                                                                 "payload_retention_days": 7})
    assert (result["recompute_hour"], result["drift_policy"], result["payload_retention_days"]) == (5, "report", 7)
    stored = Shop.objects.get(pk=installed_shop.pk)
    assert (stored.recompute_hour, stored.drift_policy, stored.payload_retention_days) == (5, "report", 7)
    assert not TagChange.objects.filter(shop=installed_shop).exists()


def test_a_new_prefix_rewrites_every_tag_and_keeps_the_merchants(tagstore):
    a, b = tagstore.customers(2, tags=["seg:by-hand", "wholesale"])
    tagstore.order(a)
    tagstore.segment("one-timers", ONE_ORDER)
    tagstore.recompute()
    shop_tags_sync(shop_id=tagstore.shop.pk)
    assert tagstore.tags(a) == ["seg:by-hand", "wholesale", "seg:one-timers"]

    shop_settings_update(shop=tagstore.shop, changes={"tag_prefix": "aud:"})
    shop_tags_sync(shop_id=tagstore.shop.pk)

    # our old tag is gone, the new one is there; the merchant's look-alike and other tags stay
    assert tagstore.tags(a) == ["seg:by-hand", "wholesale", "aud:one-timers"]
    assert tagstore.tags(b) == ["seg:by-hand", "wholesale"]
    assert tagstore.pending() == 0


def test_a_prefix_that_makes_two_tags_clash_is_refused(tagstore):
    tagstore.segment("vip", ONE_ORDER)
    shop_settings_update(shop=tagstore.shop, changes={"holdout_tag": "seg:{handle}-control"})
    tagstore.segment("vip-control", ONE_ORDER)
    with pytest.raises(SettingsError):
        shop_settings_update(shop=tagstore.shop, changes={"tag_prefix": "aud:", "holdout_tag": "aud:{handle}-control"})
    assert Shop.objects.get(pk=tagstore.shop.pk).tag_prefix == "seg:"
