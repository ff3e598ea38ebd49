"""The segment builder's pages as the embedded admin loads them: new (blank or from a template) and
edit (the shop's own segment only); the page hands builder.js what it needs and nothing else."""
from __future__ import annotations

import json
import re

import pytest
from django.urls import resolve

from segments.engine.windows import HOLIDAY_LABELS
from segments.membership.models import Segment, SegmentVersion
from tests.segments.web.pages.conftest import make_segment

pytestmark = pytest.mark.django_db


def builder_config(response) -> dict:
    match = re.search(r'<script id="builder-config" type="application/json">(.*?)</script>',
                      response.content.decode(), re.S)
    assert match, "the page carries the builder's configuration"
    return json.loads(match.group(1))


def test_new_segment_page_starts_blank(get_page, installed_shop):
    response = get_page(installed_shop, "/admin/segments/new")
    assert response.status_code == 200
    html = response.content.decode()
    assert "<h1>New segment</h1>" in html
    assert 'src="/static/segments/builder.js"' in html and "segments/builder.css" in html
    assert 'id="template-list"' in html                    # the starts to choose from
    assert 'id="setting-handle" name="handle"' in html      # a new segment's tag name is chosen here
    assert 'id="live-status" role="status" aria-live="polite"' in html
    config = builder_config(response)
    assert config["segment"] is None and config["template"] == "" and config["tag"] == ""
    assert config["tag_prefix"] == installed_shop.tag_prefix
    assert config["holidays"] == [{"key": k, "label": v} for k, v in HOLIDAY_LABELS.items()]
    assert "frame-ancestors " in response["Content-Security-Policy"]


def test_new_segment_page_preloads_a_template(get_page, installed_shop):
    config = builder_config(get_page(installed_shop, "/admin/segments/new", template="vip"))
    assert config["template"] == "vip"


def test_an_unknown_template_is_said_and_the_page_starts_blank(get_page, installed_shop):
    response = get_page(installed_shop, "/admin/segments/new", template="<b>nope</b>")
    assert response.status_code == 200
    html = response.content.decode()
    assert "No template called “&lt;b&gt;nope&lt;/b&gt;”" in html and "<b>nope</b>" not in html
    assert builder_config(response)["template"] == ""


def test_after_save_the_builder_goes_to_the_segment_page(get_page, installed_shop):
    config = builder_config(get_page(installed_shop, "/admin/segments/new"))
    url = config["after_save_url"].replace(config["detail_placeholder"], "42")
    path, query = url.split("?")
    match = resolve(path)
    assert (match.url_name, match.kwargs) == ("segment-detail", {"pk": 42})
    assert query == f"shop={installed_shop.domain}"


def test_edit_page_loads_the_shops_segment(get_page, installed_shop):
    segment = make_segment(installed_shop, name="Regulars")
    response = get_page(installed_shop, f"/admin/segments/{segment.pk}/edit")
    assert response.status_code == 200
    html = response.content.decode()
    assert "<h1>Edit Regulars</h1>" in html and f"<code>{segment.tag}</code>" in html
    assert 'id="template-list"' not in html                # an edit starts from the current version
    assert 'id="setting-handle"' not in html               # a tag never changes name
    assert 'id="setting-reason" name="reason" type="text" maxlength="500" autocomplete="off"\n             required' in html
    config = builder_config(response)
    assert config["segment"] == segment.pk and config["tag"] == segment.tag


def test_another_shops_segment_is_a_404_and_nothing_changes(get_page, installed_shop, other_shop):
    theirs = make_segment(other_shop, name="Theirs")
    response = get_page(installed_shop, f"/admin/segments/{theirs.pk}/edit")
    assert response.status_code == 404
    assert b"Theirs" not in response.content
    assert get_page(installed_shop, "/admin/segments/999999999/edit").status_code == 404
    assert SegmentVersion.objects.filter(segment=theirs).count() == 1
    assert Segment.objects.get(pk=theirs.pk).current_version == 1


@pytest.mark.parametrize("path", ["/admin/segments/new", "/admin/segments/1/edit"])
def test_without_a_token_the_builder_bounces(client, path):
    response = client.get(f"{path}?shop=demo.myshopify.com")
    assert response.status_code == 200
    html = response.content.decode()
    assert "segments/bounce.js" in html and "builder-config" not in html


def test_a_forged_token_is_refused(client, installed_shop):
    response = client.get(f"/admin/segments/new?id_token=not-a-jwt&shop={installed_shop.domain}")
    assert response.status_code == 401
    assert b"builder-config" not in response.content
