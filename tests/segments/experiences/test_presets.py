"""The four on-site experience presets a playbook picks: every field checked with a message naming
it, defaults filled in, texts with their {threshold} and {percent} filled. The API that saves them is
tested with the playbook's (tests/segments/web/api/test_playbooks.py)."""
from __future__ import annotations

import pytest

from segments.experiences.presets import PRESETS, ExperienceError, experience_clean, experience_texts


def test_none_is_an_empty_experience_and_a_preset_gets_every_default():
    assert experience_clean({}) == {} and experience_clean(None) == {}
    for key, preset in PRESETS.items():
        given = {"preset": key, **({"collection": "outerwear"} if key == "category" else {})}
        cleaned = experience_clean(given)
        assert set(cleaned) == {"preset", *preset.fields}
        assert all(cleaned[name] == field.default for name, field in preset.fields.items() if name not in given)


@pytest.mark.parametrize("given, problems", [
    ({"preset": "banner"}, {"preset"}),
    ("vip_hero", {"preset"}),
    ({"preset": "vip_hero", "colour": "red"}, {"colour"}),
    ({"preset": "vip_hero", "heading": "h" * 201}, {"heading"}),
    ({"preset": "vip_hero", "heading": 7}, {"heading"}),
    ({"preset": "vip_hero", "heading": "a\x00b"}, {"heading"}),
    ({"preset": "vip_hero", "link": "https://elsewhere.example/phish"}, {"link"}),
    ({"preset": "vip_hero", "link": "javascript:alert(1)"}, {"link"}),
    ({"preset": "vip_hero", "collection": "New Arrivals!"}, {"collection"}),
    ({"preset": "cart_value", "threshold": 0}, {"threshold"}),
    ({"preset": "cart_value", "threshold": True}, {"threshold"}),
    ({"preset": "cart_value", "threshold": "100"}, {"threshold"}),
    ({"preset": "cart_value", "percent": 95, "threshold": 1e9}, {"percent", "threshold"}),
    ({"preset": "category"}, {"collection"}),
    ({"preset": "utm_campaign", "campaigns": [{"campaign": "a b", "heading": "x", "link": "/"}]}, {"campaigns"}),
    ({"preset": "utm_campaign", "campaigns": [{"campaign": "x"}, {"campaign": "X"}]}, {"campaigns"}),
    ({"preset": "utm_campaign", "campaigns": [{"campaign": "x", "extra": 1}]}, {"campaigns"}),
    ({"preset": "utm_campaign", "campaigns": [{"campaign": f"c{n}"} for n in range(11)]}, {"campaigns"}),
])
def test_a_wrong_field_is_refused_by_name(given, problems):
    with pytest.raises(ExperienceError) as refused:
        experience_clean(given)
    assert set(refused.value.problems) == problems


def test_the_cart_value_texts_show_the_threshold_and_percent():
    cleaned = experience_clean({"preset": "cart_value", "threshold": 1250, "percent": 15,
                                "above_heading": "Free shipping from ${threshold}"})
    texts = experience_texts(cleaned)
    assert texts["above_heading"] == "Free shipping from $1,250" and texts["below_heading"] == "15% off your cart"
    assert cleaned["above_heading"] == "Free shipping from ${threshold}"      # stored as the merchant wrote it


def test_campaigns_are_trimmed_and_kept_in_order():
    cleaned = experience_clean({"preset": "utm_campaign", "campaigns": [
        {"campaign": " winter-boots ", "heading": " Boots ", "link": "/collections/boots"},
        {"campaign": "spring", "heading": "Spring", "link": ""}]})
    assert cleaned["campaigns"] == [{"campaign": "winter-boots", "heading": "Boots", "link": "/collections/boots"},
                                    {"campaign": "spring", "heading": "Spring", "link": ""}]
