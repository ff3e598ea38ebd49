"""The store generator: deterministic by seed, consistent money and times, and personas that behave
the way their names promise (the segment engine's tests rely on that ground truth)."""
from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter, defaultdict

import pytest

from devstore.generator import PERSONAS, SeedReport, holiday_windows, seed_shop
from devstore.state import DevStore, parse_iso

SHOP = "test-shop.myshopify.com"
NOW = dt.datetime(2025, 6, 1, tzinfo=dt.timezone.utc)
CUSTOMERS = 2000
TABLES = ("shops", "products", "variants", "customers", "orders", "line_items", "refunds", "checkouts", "carts",
          "counters")
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> tuple[DevStore, SeedReport]:
    store = DevStore(tmp_path_factory.mktemp("seeded") / "devstore.db")
    store.shop_create(SHOP)
    report = seed_shop(store, SHOP, customers=CUSTOMERS, seed=7, now=NOW, batch=700)
    yield store, report
    store.close()


def rows(store: DevStore, sql: str, *params: object) -> list:
    return store.conn().execute(sql, params).fetchall()


def orders_by_persona(store: DevStore, persona: str) -> list:
    return rows(store, "SELECT o.* FROM orders o JOIN customers c ON c.id = o.customer_id WHERE c.persona = ?",
                persona)


def dump(store: DevStore) -> dict[str, list[tuple]]:
    return {table: [tuple(r) for r in rows(store, f"SELECT * FROM {table} ORDER BY 1")] for table in TABLES}


def in_holiday_window(created_at: str) -> bool:
    day = parse_iso(created_at).date()
    return any(first <= day <= last for first, last in holiday_windows(day.year).values())


# -- determinism and bookkeeping ------------------------------------------------------------------

def test_same_seed_gives_identical_rows_and_other_seeds_differ(tmp_path, store):
    def seeded_dump(name: str, seed: int) -> dict[str, list[tuple]]:
        other = DevStore(tmp_path / name)
        other.shop_create(SHOP)
        seed_shop(other, SHOP, customers=300, seed=seed, now=NOW, batch=128)
        result = dump(other)
        other.close()
        return result

    seed_shop(store, SHOP, customers=300, seed=1, now=NOW)   # conftest's store, default batch size
    first = dump(store)
    assert first == seeded_dump("a.db", 1)
    different = seeded_dump("b.db", 2)
    assert different["customers"] != first["customers"]
    assert different["orders"] != first["orders"]


def test_report_matches_the_tables(seeded):
    store, report = seeded
    count = lambda sql: rows(store, sql)[0][0]  # noqa: E731
    assert report.customers == CUSTOMERS == count("SELECT COUNT(*) FROM customers")
    assert report.orders == count("SELECT COUNT(*) FROM orders")
    assert report.guest_orders == count("SELECT COUNT(*) FROM orders WHERE customer_id IS NULL")
    assert report.line_items == count("SELECT COUNT(*) FROM line_items")
    assert report.refunds == count("SELECT COUNT(*) FROM refunds")
    assert report.checkouts == count("SELECT COUNT(*) FROM checkouts")
    assert report.carts == count("SELECT COUNT(*) FROM carts")
    assert report.products == count("SELECT COUNT(*) FROM products")
    assert report.variants == count("SELECT COUNT(*) FROM variants")
    assert sum(report.personas.values()) == CUSTOMERS
    assert set(report.personas) == set(PERSONAS)
    assert dict(Counter(r[0] for r in rows(store, "SELECT persona FROM customers"))) == \
        {name: n for name, n in report.personas.items() if n}
    assert report.seconds > 0
    json.dumps(vars(report))   # the control API returns it as JSON


def test_seeding_creates_a_missing_shop_emits_no_events_and_restores_pragmas(tmp_path):
    store = DevStore(tmp_path / "fresh.db")
    events = []
    store.subscribe(events.append)
    before = [store.conn().execute(f"PRAGMA {p}").fetchone()[0] for p in ("synchronous", "cache_size")]
    report = seed_shop(store, "new-shop.myshopify.com", customers=50, seed=3, now=NOW)
    assert store.shop("new-shop.myshopify.com") is not None
    assert report.customers == 50
    assert events == []
    assert [store.conn().execute(f"PRAGMA {p}").fetchone()[0] for p in ("synchronous", "cache_size")] == before
    store.close()


def test_catalog_has_types_vendors_and_priced_variants(seeded):
    store, _ = seeded
    products = rows(store, "SELECT * FROM products")
    assert 190 <= len(products) <= 210
    assert len({p["product_type"] for p in products}) == 12
    assert 18 <= len({p["vendor"] for p in products}) <= 22
    per_product = Counter(r[0] for r in rows(store, "SELECT product_id FROM variants"))
    assert set(per_product.values()) <= {1, 2, 3} and len(per_product) == len(products)
    assert all(r[0] > 0 for r in rows(store, "SELECT price_cents FROM variants"))


# -- money, times and ids -------------------------------------------------------------------------

def test_order_totals_are_consistent_with_their_lines(seeded):
    store, _ = seeded
    lines = defaultdict(list)
    for line in rows(store, "SELECT * FROM line_items"):
        lines[line["order_id"]].append(line)
    for order in rows(store, "SELECT * FROM orders"):
        mine = lines[order["id"]]
        assert 1 <= len(mine) <= 4
        assert order["subtotal_cents"] == sum(li["price_cents"] * li["quantity"] for li in mine)
        assert order["discount_cents"] == sum(li["discount_cents"] for li in mine)
        assert order["total_cents"] == (order["subtotal_cents"] - order["discount_cents"] + order["shipping_cents"]
                                        + order["tax_cents"])
        assert order["currency"] == "USD"
        codes = json.loads(order["discount_codes"])
        assert sum(c["amount_cents"] for c in codes) == order["discount_cents"]
        assert bool(codes) == (order["discount_cents"] > 0)


def test_orders_are_numbered_from_1001_with_iso_times(seeded):
    store, _ = seeded
    orders = rows(store, "SELECT * FROM orders ORDER BY number")
    assert [o["number"] for o in orders] == list(range(1001, 1001 + len(orders)))
    assert all(o["name"] == f"#{o['number']}" for o in orders)
    now = NOW.strftime("%Y-%m-%dT%H:%M:%SZ")
    for o in orders:
        for column in ("created_at", "processed_at", "updated_at"):
            assert ISO.match(o[column]) and o[column] < now
        assert o["updated_at"] >= o["created_at"]
    assert min(o["created_at"] for o in orders) >= NOW.replace(year=NOW.year - 2).strftime("%Y-%m-%d")


def test_customers_exist_before_their_first_order(seeded):
    store, _ = seeded
    first = dict(rows(store, "SELECT customer_id, MIN(created_at) FROM orders WHERE customer_id IS NOT NULL "
                             "GROUP BY customer_id"))
    for c in rows(store, "SELECT * FROM customers"):
        assert ISO.match(c["created_at"]) and c["updated_at"] >= c["created_at"]
        if c["id"] in first:
            assert c["created_at"] < first[c["id"]]
        assert not any(tag.startswith("seg:") for tag in json.loads(c["tags"]))
    assert len({c["email"] for c in rows(store, "SELECT email FROM customers")}) == CUSTOMERS


def test_customers_have_varied_marketing_states_and_merchant_tags(seeded):
    store, _ = seeded
    states = {"SUBSCRIBED", "NOT_SUBSCRIBED", "UNSUBSCRIBED", "PENDING"}
    assert {r[0] for r in rows(store, "SELECT email_marketing_state FROM customers")} == states
    assert {r[0] for r in rows(store, "SELECT sms_marketing_state FROM customers")} == states
    tags = Counter(t for r in rows(store, "SELECT tags FROM customers") for t in json.loads(r[0]))
    assert tags and 0.02 < sum(tags.values()) / CUSTOMERS < 0.2


def test_refunds_are_consistent_with_their_orders(seeded):
    store, _ = seeded
    refunds = defaultdict(list)
    for refund in rows(store, "SELECT * FROM refunds"):
        refunds[refund["order_id"]].append(refund)
    orders = rows(store, "SELECT * FROM orders")
    assert 0.03 < len(refunds) / len(orders) < 0.07
    line_order = dict(rows(store, "SELECT id, order_id FROM line_items"))
    statuses = Counter()
    for order in orders:
        mine = refunds.get(order["id"], [])
        assert order["refunded_cents"] == sum(r["amount_cents"] for r in mine)
        if not mine:
            assert order["financial_status"] in ("paid", "voided")
            continue
        statuses[order["financial_status"]] += 1
        full = order["refunded_cents"] == order["total_cents"]
        assert order["financial_status"] == ("refunded" if full else "partially_refunded")
        assert 0 < order["refunded_cents"] <= order["total_cents"]
        for refund in mine:
            assert order["created_at"] < refund["created_at"] <= order["updated_at"]
            assert all(line_order[li["line_item_id"]] == order["id"] for li in json.loads(refund["line_items"]))
    assert statuses["refunded"] > 0 and statuses["partially_refunded"] > 0


def test_cancelled_and_test_orders_are_rare(seeded):
    store, _ = seeded
    total = rows(store, "SELECT COUNT(*) FROM orders")[0][0]
    cancelled = rows(store, "SELECT * FROM orders WHERE cancelled_at IS NOT NULL")
    assert 0.003 < len(cancelled) / total < 0.02
    assert all(o["cancel_reason"] and o["financial_status"] == "voided" for o in cancelled)
    assert 0 < rows(store, "SELECT COUNT(*) FROM orders WHERE test = 1")[0][0] < total * 0.01


def test_guest_orders_have_emails_some_of_known_customers(seeded):
    store, _ = seeded
    guests = rows(store, "SELECT email FROM orders WHERE customer_id IS NULL")
    orders = rows(store, "SELECT COUNT(*) FROM orders")[0][0]
    assert 0.03 < len(guests) / orders < 0.1
    assert all(g["email"] for g in guests)
    known = {r[0] for r in rows(store, "SELECT email FROM customers")}
    assert 0 < sum(g["email"] in known for g in guests) < len(guests)


def test_carts_link_checkouts_and_orders(seeded):
    store, _ = seeded
    carts = {r[0] for r in rows(store, "SELECT token FROM carts")}
    checkouts = rows(store, "SELECT * FROM checkouts")
    assert checkouts and all(c["completed_at"] is None and c["cart_token"] in carts for c in checkouts)
    online = rows(store, "SELECT cart_token FROM orders WHERE source_name != 'pos'")
    assert all(o[0] in carts for o in online)
    assert rows(store, "SELECT COUNT(*) FROM orders WHERE source_name = 'pos' AND cart_token IS NOT NULL")[0][0] == 0
    for c in checkouts[:200]:
        items = json.loads(c["line_items"])
        assert c["subtotal_cents"] == sum(i["price_cents"] * i["quantity"] for i in items)


def test_devices_shipping_and_seasonality(seeded):
    store, _ = seeded
    orders = rows(store, "SELECT * FROM orders")
    devices = Counter(o["device"] for o in orders)
    assert set(devices) == {"desktop", "mobile", "tablet", "pos"}
    assert all((o["user_agent"] is None) == (o["device"] == "pos") for o in orders)
    assert {o["shipping_code"] for o in orders} == {"standard", "express", "overnight", "pickup", None}
    assert all(o["shipping_title"] for o in orders if o["shipping_code"])
    by_month = Counter(int(o["created_at"][5:7]) for o in orders)
    q4 = (by_month[11] + by_month[12]) / 2
    rest = sum(by_month[m] for m in range(1, 10)) / 9
    assert q4 > 1.5 * rest


# -- personas -------------------------------------------------------------------------------------

def test_every_persona_is_seeded(seeded):
    _, report = seeded
    assert all(report.personas[name] > 0 for name in PERSONAS)


def test_mobile_first_customers_shop_on_their_phones(seeded):
    orders = orders_by_persona(seeded[0], "mobile_first")
    assert sum(o["device"] == "mobile" for o in orders) / len(orders) > 0.8
    assert {o["source_name"] for o in orders if o["device"] == "mobile"} == {"web", "iphone", "android"}


def test_bargain_hunters_use_codes_and_full_price_loyalists_never_do(seeded):
    bargain = orders_by_persona(seeded[0], "bargain_hunter")
    assert sum(o["discount_cents"] > 0 for o in bargain) / len(bargain) > 0.75
    loyal = orders_by_persona(seeded[0], "full_price_loyalist")
    assert loyal and all(o["discount_cents"] == 0 and o["discount_codes"] == "[]" for o in loyal)


def test_lapsing_customers_were_active_but_not_in_the_last_180_days(seeded):
    store, _ = seeded
    cutoff = (NOW - dt.timedelta(days=180)).strftime("%Y-%m-%dT%H:%M:%SZ")
    orders = orders_by_persona(store, "lapsing")
    assert orders and all(o["created_at"] < cutoff for o in orders)
    checkouts = rows(store, "SELECT k.created_at FROM checkouts k JOIN customers c ON c.id = k.customer_id "
                            "WHERE c.persona = 'lapsing'")
    assert all(k[0] < cutoff for k in checkouts)


def test_cart_abandoners_leave_high_and_low_value_checkouts(seeded):
    store, _ = seeded
    checkouts = rows(store, "SELECT k.* FROM checkouts k JOIN customers c ON c.id = k.customer_id "
                            "WHERE c.persona = 'cart_abandoner'")
    per_customer = Counter(k["customer_id"] for k in checkouts)
    abandoners = rows(store, "SELECT id FROM customers WHERE persona = 'cart_abandoner'")
    assert all(per_customer[c[0]] >= 3 for c in abandoners)
    assert any(k["subtotal_cents"] > 10_000 for k in checkouts)
    assert any(k["subtotal_cents"] < 5_000 for k in checkouts)
    recent = (NOW - dt.timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert any(k["created_at"] >= recent for k in checkouts)
    orders = orders_by_persona(store, "cart_abandoner")
    assert len(orders) / len(abandoners) < 1.5


def test_seasonal_customers_buy_in_holiday_windows(seeded):
    orders = orders_by_persona(seeded[0], "seasonal_holiday")
    assert sum(in_holiday_window(o["created_at"]) for o in orders) / len(orders) > 0.85
    everyone = rows(seeded[0], "SELECT created_at FROM orders WHERE customer_id IS NOT NULL")
    assert sum(in_holiday_window(o[0]) for o in everyone) / len(everyone) < 0.5


def test_replenishers_reorder_consumables_at_regular_intervals(seeded):
    store, _ = seeded
    by_customer = defaultdict(list)
    for order in orders_by_persona(store, "replenisher"):
        by_customer[order["customer_id"]].append(parse_iso(order["created_at"]))
    since_last = []
    for times in by_customer.values():
        times.sort()
        gaps = [(b - a).days for a, b in zip(times, times[1:])]
        assert all(20 <= gap <= 40 for gap in gaps), gaps
        since_last.append((NOW - times[-1]).days)
    assert any(days < 25 for days in since_last) and any(days >= 25 for days in since_last)   # some are due
    types = Counter(r[0] for r in rows(store, "SELECT li.product_type FROM line_items li JOIN orders o "
                                              "ON o.id = li.order_id JOIN customers c ON c.id = o.customer_id "
                                              "WHERE c.persona = 'replenisher'"))
    consumable = sum(types[t] for t in ("Coffee", "Tea", "Supplements", "Skincare", "Pet Supplies"))
    assert consumable == sum(types.values())


def test_category_loyalists_mostly_buy_one_product_type(seeded):
    store, _ = seeded
    per_customer = defaultdict(Counter)
    for customer_id, product_type in rows(
            store, "SELECT o.customer_id, li.product_type FROM line_items li JOIN orders o ON o.id = li.order_id "
                   "JOIN customers c ON c.id = o.customer_id WHERE c.persona = 'category_loyalist'"):
        per_customer[customer_id][product_type] += 1
    top = sum(c.most_common(1)[0][1] for c in per_customer.values())
    assert top / sum(sum(c.values()) for c in per_customer.values()) > 0.85


def test_new_customers_joined_and_ordered_in_the_last_30_days(seeded):
    store, _ = seeded
    cutoff = (NOW - dt.timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    customers = rows(store, "SELECT * FROM customers WHERE persona = 'new_customer'")
    firsts = dict(rows(store, "SELECT o.customer_id, MIN(o.created_at) FROM orders o JOIN customers c "
                              "ON c.id = o.customer_id WHERE c.persona = 'new_customer' GROUP BY 1"))
    assert len(firsts) == len(customers)
    assert all(c["created_at"] >= cutoff and firsts[c["id"]] >= cutoff for c in customers)


def test_fastest_shipping_customers_pay_for_speed(seeded):
    orders = orders_by_persona(seeded[0], "fastest_shipping")
    assert sum(o["shipping_code"] in ("express", "overnight") for o in orders) / len(orders) > 0.75


def test_vips_outspend_and_one_time_buyers_buy_once(seeded):
    store, _ = seeded
    spend = dict(rows(store, "SELECT c.persona, SUM(o.total_cents) * 1.0 / COUNT(DISTINCT c.id) FROM orders o "
                             "JOIN customers c ON c.id = o.customer_id GROUP BY 1"))
    assert spend["vip"] > 5 * spend["casual"]
    assert spend["high_value_repeat"] > 2 * spend["casual"]
    counts = rows(store, "SELECT COUNT(o.id) FROM customers c LEFT JOIN orders o ON o.customer_id = c.id "
                         "WHERE c.persona = 'one_time_buyer' GROUP BY c.id")
    assert {r[0] for r in counts} == {1}


# -- holiday windows ------------------------------------------------------------------------------

def test_holiday_windows_follow_the_us_calendar():
    w2024 = holiday_windows(2024)
    assert w2024["black_friday_cyber_monday"] == (dt.date(2024, 11, 29), dt.date(2024, 12, 2))
    assert w2024["mothers_day"] == (dt.date(2024, 4, 28), dt.date(2024, 5, 11))
    assert w2024["christmas"] == (dt.date(2024, 12, 1), dt.date(2024, 12, 24))
    assert w2024["valentines"] == (dt.date(2024, 2, 1), dt.date(2024, 2, 14))
    w2025 = holiday_windows(2025)
    assert w2025["black_friday_cyber_monday"] == (dt.date(2025, 11, 28), dt.date(2025, 12, 1))
    assert w2025["mothers_day"] == (dt.date(2025, 4, 27), dt.date(2025, 5, 10))
