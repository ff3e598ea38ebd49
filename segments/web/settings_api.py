"""The settings JSON API: the shop's settings read and changed through segments.shops.preferences
(the settings page uses the same service)."""
from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response

from segments.shops.preferences import shop_settings, shop_settings_update
from segments.web import schema
from segments.web.api import SegmentsAPIView


class SettingsView(SegmentsAPIView):
    """GET /api/settings: the settings with their choices and ranges; PATCH: change some of them
    (refused whole, nothing saved, when any value cannot be used; no body reads as {})."""

    @extend_schema(operation_id="settings_retrieve",
                   responses=schema.responses(schema.SettingsSerializer, lookup=False), summary="The shop's settings")
    def get(self, request):
        return Response(shop_settings(shop=self.shop))

    @extend_schema(operation_id="settings_update", request=schema.SettingsFieldsSerializer,
                   responses=schema.responses(schema.SettingsSerializer, body=True, lookup=False),
                   summary="Change some settings (refused whole when one cannot be used)")
    def patch(self, request):
        changes = self.body(schema.SettingsFieldsSerializer, optional=True)
        return Response(shop_settings_update(shop=self.shop, changes=changes, author=self.author))
