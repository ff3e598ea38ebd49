"""Fixtures for devstore's own tests."""
import pytest

from devstore.config import DevstoreConfig
from devstore.state import DevStore


@pytest.fixture
def store(tmp_path):
    s = DevStore(tmp_path / "devstore.db")
    s.shop_create("test-shop.myshopify.com")
    yield s
    s.close()


@pytest.fixture
def devstore_config():
    return DevstoreConfig(public_url="http://127.0.0.1:8765", time_scale=0.001)
