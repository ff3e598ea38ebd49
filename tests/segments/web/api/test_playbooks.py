"""Playbooks over the API: defaults before anything is written, edits checked field by field (nothing
saved on a refusal), the shop's list, and the Markdown download."""
from __future__ import annotations

import pytest

from segments.experiences.models import Playbook, StorefrontSync
from tests.segments.web.api.conftest import BUYERS, assert_error, create

pytestmark = pytest.mark.django_db

FULL = {"goal": "Bring buyers back for a second order", "message": "We saved you a seat at the tea table.",
        "channels": ["email", "onsite"], "offer": "10% off the next order", "cadence": "weekly, Tuesday morning",
        "campaign_ideas": ["New harvest teaser", "Brewing guide"], "frequency_cap": 2, "owner": "Grace",
        "kpi": "revenue_per_member"}


@pytest.fixture
def segment(api, django_capture_on_commit_callbacks) -> dict:
    return create(api, django_capture_on_commit_callbacks, {"name": "Buyers", "rules": BUYERS})


def test_an_unwritten_playbook_reads_as_the_defaults(api, segment):
    response = api.get(f"/api/segments/{segment['id']}/playbook")
    assert response.status_code == 200
    assert response.json() == {"segment": segment["id"], "saved": False, "goal": "", "message": "", "channels": [],
                               "offer": "", "campaign_ideas": [], "cadence": "", "frequency_cap": None, "owner": "",
                               "kpi": "conversion", "experience": {}, "offer_percent": None,
                               "updated_by": "", "updated_at": None}
    assert Playbook.objects.count() == 0


def test_put_writes_the_playbook_and_a_partial_put_keeps_the_rest(api, segment):
    path = f"/api/segments/{segment['id']}/playbook"
    written = api.put(path, {**FULL, "goal": "  " + FULL["goal"] + "  ", "channels": ["email", "onsite", "email"]})
    assert written.status_code == 200, written.content
    body = written.json()
    assert body["saved"] is True and body["updated_by"] == "1" and body["updated_at"]
    assert {k: body[k] for k in FULL} == FULL                 # trimmed, channels once each
    assert api.get(path).json() == body

    again = api.put(path, {"frequency_cap": None, "kpi": "aov"}).json()
    assert again["frequency_cap"] is None and again["kpi"] == "aov" and again["goal"] == FULL["goal"]
    assert Playbook.objects.filter(segment_id=segment["id"]).count() == 1


@pytest.mark.parametrize("change, path", [
    ({"goal": "g" * 301}, "goal"),
    ({"message": 5}, "message"),
    ({"owner": "o" * 101}, "owner"),
    ({"channels": "email"}, "channels"),
    ({"channels": ["email", "fax"]}, "channels[1]"),
    ({"kpi": "happiness"}, "kpi"),
    ({"frequency_cap": 0}, "frequency_cap"),
    ({"frequency_cap": 51}, "frequency_cap"),
    ({"frequency_cap": True}, "frequency_cap"),
    ({"frequency_cap": "3"}, "frequency_cap"),
    ({"campaign_ideas": ["idea"] * 21}, "campaign_ideas"),
    ({"campaign_ideas": ["fine", "i" * 201]}, "campaign_ideas[1]"),
    ({"campaign_ideas": ["  "]}, "campaign_ideas[0]"),
    ({"campaign_ideas": [7]}, "campaign_ideas[0]"),
    ({"updated_by": "me"}, "updated_by"),
    ({"experience": {"preset": "cart_value", "threshold": -5}}, "experience.threshold"),
    ({"experience": {"preset": "nope"}}, "experience.preset"),
    ({"experience": "vip_hero"}, "experience"),
    ({"offer_percent": 0}, "offer_percent"),
    ({"offer_percent": 91}, "offer_percent"),
])
def test_refused_values_name_their_path_and_save_nothing(api, segment, change, path):
    url = f"/api/segments/{segment['id']}/playbook"
    assert api.put(url, FULL).status_code == 200
    before = list(Playbook.objects.values())

    error = assert_error(api.put(url, {"goal": "changed", **change}), 400, "invalid_settings")

    assert [p["path"] for p in error["problems"]] == [path]
    assert list(Playbook.objects.values()) == before
    assert not StorefrontSync.objects.filter(published_at__isnull=True).exists()    # nothing to write


def test_refusal_of_a_first_write_creates_no_playbook(api, segment):
    assert_error(api.put(f"/api/segments/{segment['id']}/playbook", {"kpi": "nope"}), 400, "invalid_settings")
    assert Playbook.objects.count() == 0


def test_the_shops_playbooks_are_listed_with_their_segments(api, segment, other, django_capture_on_commit_callbacks):
    unwritten = create(api, django_capture_on_commit_callbacks, {"name": "Repeaters", "rules": BUYERS})
    api.put(f"/api/segments/{segment['id']}/playbook", FULL)
    _, theirs = other
    their_segment = create(theirs, django_capture_on_commit_callbacks, {"name": "Theirs", "rules": BUYERS})
    theirs.put(f"/api/segments/{their_segment['id']}/playbook", {"goal": "their goal"})

    listed = api.get("/api/playbooks").json()["playbooks"]

    assert [(p["segment"], p["segment_name"], p["tag"], p["goal"]) for p in listed] == [
        (segment["id"], "Buyers", "seg:buyers", FULL["goal"])]
    assert unwritten["id"] not in {p["segment"] for p in listed}
    assert [p["goal"] for p in theirs.get("/api/playbooks").json()["playbooks"]] == ["their goal"]


def test_markdown_download(api, segment, shop):
    api.put(f"/api/segments/{segment['id']}/playbook", {**FULL, "offer": "<b>free</b> *shipping*"})

    response = api.get(f"/api/segments/{segment['id']}/playbook.md")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/markdown; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="playbook-buyers.md"'
    text = response.content.decode()
    assert text.startswith("# Playbook: Buyers\n")
    for expected in ("`seg:buyers`", "**Members:** 3", segment["summary"], FULL["goal"], FULL["message"],
                     "Email, On-site (theme)", "1. New harvest teaser", "2. Brewing guide", FULL["cadence"],
                     "2 messages per member per week", "**Owner:** Grace", "**KPI:** Revenue per member"):
        assert expected in text, expected
    # Merchant text cannot turn into HTML or styling when the document is rendered.
    assert "\\<b\\>free\\</b\\> \\*shipping\\*" in text and "<b>" not in text


def test_markdown_of_an_unwritten_playbook_says_what_is_missing(api, segment):
    text = api.get(f"/api/segments/{segment['id']}/playbook.md").content.decode()
    assert "## Goal\n\n_not set_" in text and "**KPI:** Conversion rate" in text and "no cap" in text
    assert Playbook.objects.count() == 0


def test_the_api_saves_an_experience_and_marks_the_storefront(api, segment):
    path = f"/api/segments/{segment['id']}/playbook"
    saved = api.put(path, {"goal": "More", "experience": {"preset": "cart_value", "threshold": 80}, "offer_percent": 12})
    assert saved.status_code == 200, saved.content
    body = saved.json()
    assert body["experience"]["threshold"] == 80.0 and body["experience"]["percent"] == 10
    assert body["offer_percent"] == 12
    assert StorefrontSync.objects.filter(published_at__isnull=True).count() == 1
