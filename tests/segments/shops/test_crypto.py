"""Tokens at rest: ciphertext in the table, readable through the model, keys rotate."""
import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection

from segments.shops import crypto
from segments.shops.models import Shop

pytestmark = pytest.mark.django_db


def raw_tokens(pk):
    with connection.cursor() as cursor:
        cursor.execute("SELECT access_token, refresh_token FROM segments_shop WHERE id = %s", [pk])
        return cursor.fetchone()


def test_rotation_re_encrypts_under_the_new_key(settings):
    old_key = settings.SHOPSEG_TOKEN_KEYS[0]
    shop = Shop.objects.create(domain="rot.myshopify.com", access_token="shpat_secret", refresh_token="shprt_x")
    before = raw_tokens(shop.pk)
    assert "shpat_secret" not in before[0]

    new_key = Fernet.generate_key().decode()
    settings.SHOPSEG_TOKEN_KEYS = [new_key, old_key]
    call_command("rotate_token_keys")
    after = raw_tokens(shop.pk)
    assert after != before

    settings.SHOPSEG_TOKEN_KEYS = [new_key]           # the old key is gone
    shop = Shop.objects.get(pk=shop.pk)
    assert shop.access_token == "shpat_secret" and shop.refresh_token == "shprt_x"


def test_unknown_key_fails_loudly(settings):
    Shop.objects.create(domain="k.myshopify.com", access_token="shpat_1")
    settings.SHOPSEG_TOKEN_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(Exception, match="SHOPSEG_TOKEN_KEYS"):
        Shop.objects.get(domain="k.myshopify.com")


def test_empty_tokens_stay_empty():
    shop = Shop.objects.create(domain="e.myshopify.com")
    assert raw_tokens(shop.pk) == (None, None)
    assert Shop.objects.get(pk=shop.pk).access_token is None
    assert crypto.decrypt(crypto.encrypt("x")) == "x"
