"""The lean bulk executor gives exactly what graphql-core gives, and defers to it when it must."""
import dataclasses

import pytest
from graphql import execute, parse

from devstore.bulk_exec import execute_bulk_page
from devstore.config import DevstoreConfig
from devstore.generator import seed_shop
from devstore.graphql_api import AdminAPI
from devstore.graphql_context import BulkPage, RequestContext
from devstore.state import utcnow
from segments.mirror.backfill_plan import STAGES

SHOP = "test-shop.myshopify.com"
SCOPES = {"read_customers", "read_orders", "read_all_orders", "read_products"}


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    from devstore.state import DevStore

    store = DevStore(tmp_path_factory.mktemp("bulkexec") / "devstore.db")
    store.shop_create(SHOP)
    seed_shop(store, SHOP, customers=150, seed=4)
    store.app_register(api_key="k", api_secret="s" * 40, app_url="http://app.example/")
    return store, AdminAPI(store, DevstoreConfig())


def both(api, store, query, scopes=SCOPES):
    base = RequestContext(store=store, config=api.config, shop=SHOP, shop_row=store.shop(SHOP), api_key="k",
                          scopes=frozenset(scopes), api_version="2026-10", now=utcnow(), bulk=api.bulk)
    lean_ctx = dataclasses.replace(base, bulk_page=BulkPage(100), search_warnings=[])
    core_ctx = dataclasses.replace(base, bulk_page=BulkPage(100), search_warnings=[])
    document = parse(query)
    lean = execute_bulk_page(api.schema, document, lean_ctx)
    core = execute(api.schema, document, context_value=core_ctx)
    return lean, core


@pytest.mark.parametrize("stage", STAGES, ids=[s.root for s in STAGES])
def test_the_backfill_queries_come_out_identical(seeded, stage):
    store, api = seeded
    lean, core = both(api, store, stage.query)
    assert core.errors is None
    assert lean == core.data
    assert lean[stage.root]["edges"]


def test_it_defers_to_graphql_core_for_fragments_and_errors(seeded):
    store, api = seeded
    lean, _ = both(api, store, "{ customers { edges { node { ...F } } } } fragment F on Customer { id }")
    assert lean is None
    lean, core = both(api, store, "{ orders { edges { node { id } } } }", scopes={"read_customers"})
    assert lean is None and core.errors   # ACCESS_DENIED is reported by graphql-core
