"""The SQL schema of devstore's state file, one table per kind of row a shop holds; kept apart from
state.py because it is most of that module's length and is read on its own: its column comments say
what a row holds (the JSON shapes of line items and discount codes, the values of enum-like text
columns). `DevStore` runs it whenever it opens a file, and every statement is `IF NOT EXISTS`, so an
existing file is left as it is.
"""
from __future__ import annotations

SCHEMA = """
CREATE TABLE IF NOT EXISTS apps (
    api_key TEXT PRIMARY KEY,
    api_secret TEXT NOT NULL,
    previous_secret TEXT,
    app_url TEXT NOT NULL,
    redirect_urls TEXT NOT NULL DEFAULT '[]'
);
CREATE TABLE IF NOT EXISTS shops (
    domain TEXT PRIMARY KEY,
    id INTEGER NOT NULL UNIQUE,
    name TEXT NOT NULL,
    email TEXT NOT NULL,
    currency TEXT NOT NULL DEFAULT 'USD',
    iana_timezone TEXT NOT NULL DEFAULT 'America/New_York',
    plan TEXT NOT NULL DEFAULT 'shopify',
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS installations (
    shop TEXT NOT NULL,
    api_key TEXT NOT NULL,
    scopes TEXT NOT NULL,
    installed_at TEXT NOT NULL,
    uninstalled_at TEXT,
    PRIMARY KEY (shop, api_key)
);
CREATE TABLE IF NOT EXISTS oauth_codes (
    code TEXT PRIMARY KEY,
    shop TEXT NOT NULL,
    api_key TEXT NOT NULL,
    scopes TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS tokens (
    token TEXT PRIMARY KEY,
    shop TEXT NOT NULL,
    api_key TEXT NOT NULL,
    kind TEXT NOT NULL,            -- 'access' | 'refresh'
    scopes TEXT NOT NULL,
    expires_at TEXT,               -- NULL: never expires (legacy offline token)
    revoked INTEGER NOT NULL DEFAULT 0,
    first_used_at TEXT,            -- refresh tokens: when a replacement was first requested
    replaced_by TEXT,              -- refresh tokens: the refresh token issued in exchange
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS tokens_shop ON tokens (shop, api_key, kind);
CREATE TABLE IF NOT EXISTS products (
    id INTEGER PRIMARY KEY,
    shop TEXT NOT NULL,
    title TEXT NOT NULL,
    handle TEXT NOT NULL,
    product_type TEXT NOT NULL,
    vendor TEXT NOT NULL,
    tags TEXT NOT NULL DEFAULT '[]',
    status TEXT NOT NULL DEFAULT 'active',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS products_shop ON products (shop, id);
CREATE TABLE IF NOT EXISTS variants (
    id INTEGER PRIMARY KEY,
    product_id INTEGER NOT NULL,
    shop TEXT NOT NULL,
    title TEXT NOT NULL,
    sku TEXT NOT NULL,
    price_cents INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS variants_product ON variants (product_id);
-- One per variant, as on Shopify (ProductVariant.inventoryItem); its SKU is the variant's.
CREATE TABLE IF NOT EXISTS inventory_items (
    id INTEGER PRIMARY KEY,
    shop TEXT NOT NULL,
    variant_id INTEGER NOT NULL UNIQUE,
    cost_cents INTEGER,                             -- unit cost in the shop currency; NULL: none entered
    tracked INTEGER NOT NULL DEFAULT 1,
    requires_shipping INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS inventory_items_updated ON inventory_items (shop, updated_at);
CREATE TABLE IF NOT EXISTS customers (
    id INTEGER PRIMARY KEY,
    shop TEXT NOT NULL,
    first_name TEXT,
    last_name TEXT,
    email TEXT,
    phone TEXT,
    state TEXT NOT NULL DEFAULT 'enabled',          -- disabled | invited | enabled | declined
    email_marketing_state TEXT NOT NULL DEFAULT 'NOT_SUBSCRIBED',
    sms_marketing_state TEXT NOT NULL DEFAULT 'NOT_SUBSCRIBED',
    tags TEXT NOT NULL DEFAULT '[]',                -- JSON list, order kept as Shopify shows it
    note TEXT,
    verified_email INTEGER NOT NULL DEFAULT 1,
    persona TEXT,                                   -- generator ground truth; never served
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS customers_shop ON customers (shop, id);
CREATE INDEX IF NOT EXISTS customers_updated ON customers (shop, updated_at);
CREATE INDEX IF NOT EXISTS customers_email ON customers (shop, email);
CREATE TABLE IF NOT EXISTS orders (
    id INTEGER PRIMARY KEY,
    shop TEXT NOT NULL,
    number INTEGER NOT NULL,
    name TEXT NOT NULL,
    customer_id INTEGER,
    email TEXT,
    created_at TEXT NOT NULL,
    processed_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    cancelled_at TEXT,
    cancel_reason TEXT,
    closed_at TEXT,
    financial_status TEXT NOT NULL DEFAULT 'paid',
    fulfillment_status TEXT,
    currency TEXT NOT NULL,
    subtotal_cents INTEGER NOT NULL,
    discount_cents INTEGER NOT NULL DEFAULT 0,
    shipping_cents INTEGER NOT NULL DEFAULT 0,
    tax_cents INTEGER NOT NULL DEFAULT 0,
    total_cents INTEGER NOT NULL,
    refunded_cents INTEGER NOT NULL DEFAULT 0,
    discount_codes TEXT NOT NULL DEFAULT '[]',      -- JSON [{code, amount_cents, type}]
    source_name TEXT NOT NULL DEFAULT 'web',        -- web | pos | shopify_draft_order | iphone | android
    device TEXT NOT NULL DEFAULT 'desktop',         -- desktop | mobile | tablet | pos
    user_agent TEXT,
    browser_ip TEXT,
    shipping_title TEXT,
    shipping_code TEXT,                             -- standard | express | overnight | pickup
    test INTEGER NOT NULL DEFAULT 0,
    cart_token TEXT,
    checkout_token TEXT,
    tags TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS orders_shop ON orders (shop, id);
CREATE INDEX IF NOT EXISTS orders_customer ON orders (customer_id);
CREATE INDEX IF NOT EXISTS orders_updated ON orders (shop, updated_at);
-- QueryRoot.orders sorts by processed_at unless asked otherwise (Shopify's default), so every page of
-- a listing or a bulk export seeks here rather than sorting the shop's orders again
CREATE INDEX IF NOT EXISTS orders_processed ON orders (shop, processed_at, id);
CREATE TABLE IF NOT EXISTS line_items (
    id INTEGER PRIMARY KEY,
    order_id INTEGER NOT NULL,
    shop TEXT NOT NULL,
    product_id INTEGER,
    variant_id INTEGER,
    title TEXT NOT NULL,
    vendor TEXT,
    product_type TEXT,
    sku TEXT,
    quantity INTEGER NOT NULL,
    price_cents INTEGER NOT NULL,
    discount_cents INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS line_items_order ON line_items (order_id);
CREATE TABLE IF NOT EXISTS refunds (
    id INTEGER PRIMARY KEY,
    order_id INTEGER NOT NULL,
    shop TEXT NOT NULL,
    created_at TEXT NOT NULL,
    note TEXT,
    amount_cents INTEGER NOT NULL,
    line_items TEXT NOT NULL DEFAULT '[]'           -- JSON [{line_item_id, quantity, subtotal_cents}]
);
CREATE INDEX IF NOT EXISTS refunds_order ON refunds (order_id);
CREATE TABLE IF NOT EXISTS checkouts (
    id INTEGER PRIMARY KEY,
    shop TEXT NOT NULL,
    token TEXT NOT NULL,
    cart_token TEXT,
    customer_id INTEGER,
    email TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    completed_at TEXT,
    currency TEXT NOT NULL,
    subtotal_cents INTEGER NOT NULL,
    total_cents INTEGER NOT NULL,
    device TEXT NOT NULL DEFAULT 'desktop',
    line_items TEXT NOT NULL DEFAULT '[]'           -- JSON [{product_id, variant_id, title, quantity, price_cents}]
);
CREATE INDEX IF NOT EXISTS checkouts_shop ON checkouts (shop, id);
CREATE INDEX IF NOT EXISTS checkouts_token ON checkouts (shop, token);
CREATE TABLE IF NOT EXISTS carts (
    id INTEGER PRIMARY KEY,
    shop TEXT NOT NULL,
    token TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    total_cents INTEGER NOT NULL,
    line_items TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS carts_token ON carts (shop, token);
CREATE TABLE IF NOT EXISTS deleted_resources (
    shop TEXT NOT NULL,
    kind TEXT NOT NULL,
    id INTEGER NOT NULL,
    deleted_at TEXT NOT NULL,
    PRIMARY KEY (shop, kind, id)
);
CREATE TABLE IF NOT EXISTS webhook_subscriptions (
    id INTEGER PRIMARY KEY,
    shop TEXT NOT NULL,
    api_key TEXT NOT NULL,
    topic TEXT NOT NULL,                            -- GraphQL enum, e.g. ORDERS_CREATE
    uri TEXT NOT NULL,
    format TEXT NOT NULL DEFAULT 'JSON',
    api_version TEXT NOT NULL,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS webhook_subscriptions_shop ON webhook_subscriptions (shop, api_key, topic);
CREATE TABLE IF NOT EXISTS webhook_deliveries (
    id INTEGER PRIMARY KEY,
    subscription_id INTEGER,
    shop TEXT NOT NULL,
    api_key TEXT NOT NULL,
    topic TEXT NOT NULL,                            -- REST form, e.g. orders/create
    uri TEXT NOT NULL,
    api_version TEXT NOT NULL,
    webhook_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    triggered_at TEXT NOT NULL,
    body BLOB NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,                  -- unix time
    status TEXT NOT NULL DEFAULT 'pending',         -- pending | delivered | failed | dropped
    last_status INTEGER,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE TABLE IF NOT EXISTS bulk_operations (
    id INTEGER PRIMARY KEY,
    shop TEXT NOT NULL,
    api_key TEXT NOT NULL,
    type TEXT NOT NULL,                             -- QUERY | MUTATION
    status TEXT NOT NULL,                           -- CREATED | RUNNING | COMPLETED | FAILED | CANCELED
    query TEXT NOT NULL,
    staged_upload_path TEXT,
    client_identifier TEXT,
    error_code TEXT,
    object_count INTEGER NOT NULL DEFAULT 0,
    root_object_count INTEGER NOT NULL DEFAULT 0,
    file_size INTEGER,
    result BLOB,
    partial_result BLOB,
    created_at TEXT NOT NULL,
    completed_at TEXT
);
CREATE TABLE IF NOT EXISTS web_pixels (
    id INTEGER PRIMARY KEY,
    shop TEXT NOT NULL,
    api_key TEXT NOT NULL,
    settings TEXT NOT NULL,                         -- JSON object, compact, as webPixel.settings answers it
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (shop, api_key)                          -- one web pixel per app and shop, as on Shopify
);
CREATE TABLE IF NOT EXISTS flow_triggers (
    id INTEGER PRIMARY KEY,
    shop TEXT NOT NULL,
    api_key TEXT NOT NULL,
    handle TEXT NOT NULL,
    payload TEXT NOT NULL,                          -- JSON object, as flowTriggerReceive got it
    received_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS themes (
    shop TEXT PRIMARY KEY,
    config TEXT NOT NULL                            -- JSON: app blocks per template, the app embed (devstore.theme_editor)
);
CREATE TABLE IF NOT EXISTS staged_uploads (
    key TEXT PRIMARY KEY,
    shop TEXT NOT NULL,
    created_at TEXT NOT NULL,
    content BLOB
);
CREATE TABLE IF NOT EXISTS faults (
    shop TEXT NOT NULL,                             -- '*' for every shop
    kind TEXT NOT NULL,                             -- throttle | error5xx | latency | drop_webhooks | duplicate_webhooks | shuffle_webhooks
    params TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (shop, kind)
);
CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
"""
