"""A shop's predictions from its store copy: histories read as the models define them, a fit on
buyers drawn from the BG/NBD process itself recovering its parameters and scoring every buyer,
customers rescored after their orders, the model's quality against the 90 days it did not see, and
rules reading the predictions through the compiler."""
from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal

import numpy as np
import pytest
from django.utils import timezone

from segments.membership.definitions import segment_create
from segments.membership.recompute import segments_recompute
from segments.metrics.refresh import customer_metrics_rebuild, dirty_customers_refresh
from segments.mirror.models import Customer
from segments.mirror.records import CustomerRecord, OrderRecord
from segments.mirror.orders import orders_upsert
from segments.mirror.writer import customers_upsert
from segments.predictions.bgnbd import BgNbd
from segments.predictions.histories import histories
from segments.predictions.models import CustomerPrediction, PredictionModel
from segments.predictions.scoring import models_fit, next_order_days, percentiles, predictions_score
from segments.predictions.service import _cents, customers_rescore, shop_predictions_fit
from segments.shops.models import Shop

pytestmark = pytest.mark.django_db

NOW = timezone.now().replace(microsecond=0)
ORDER_IDS = itertools.count(10_000_000)
TRUE = BgNbd(r=0.6, alpha=40.0, a=0.8, b=3.0)        # days: a purchase every ~70 days while alive


@pytest.fixture
def shop() -> Shop:
    return Shop.objects.create(domain="predict.myshopify.com", iana_timezone="UTC")


def place(shop: Shop, orders: list[tuple[int, dt.datetime, str]], *, cancelled: set[int] = frozenset()) -> None:
    sids = sorted({sid for sid, _, _ in orders})
    customers_upsert(shop=shop, records=[CustomerRecord(sid, updated_at=NOW - dt.timedelta(days=900),
                                                        created_at=NOW - dt.timedelta(days=900)) for sid in sids])
    orders_upsert(shop=shop, records=[OrderRecord(
        shopify_id=next(ORDER_IDS), created_at=at, updated_at=at, customer_shopify_id=sid,
        total=Decimal(total), subtotal=Decimal(total), cancelled_at=at if i in cancelled else None)
        for i, (sid, at, total) in enumerate(orders)])


def simulated(customers: int, seed: int = 7) -> list[tuple[int, dt.datetime, str]]:
    """Buyers drawn from TRUE's process: first purchases over 400 days, then Poisson purchases at a
    Gamma(r, alpha) rate, each followed by dropping out with a Beta(a, b) probability."""
    rng = np.random.default_rng(seed)
    orders = []
    for sid in range(1, customers + 1):
        first = NOW - dt.timedelta(days=float(rng.uniform(120, 520)))
        rate, drop = rng.gamma(TRUE.r, 1 / TRUE.alpha), rng.beta(TRUE.a, TRUE.b)
        at, alive = first, True
        orders.append((sid, at, f"{rng.uniform(20, 80):.2f}"))
        while alive:
            at += dt.timedelta(days=min(float(rng.exponential(1 / rate)), 5000.0) + 1)   # one a day at most
            if at >= NOW:
                break
            orders.append((sid, at, f"{rng.uniform(20, 80):.2f}"))
            alive = rng.random() >= drop
    return orders


def test_histories_count_purchase_days_net_of_refunds_without_cancelled_or_guest_orders(shop):
    day = NOW - dt.timedelta(days=100)
    place(shop, [(1, day, "40.00"), (1, day + dt.timedelta(hours=1), "10.00"),       # one purchase day
                 (1, day + dt.timedelta(days=30), "30.00"), (1, day + dt.timedelta(days=60), "50.00"),
                 (1, day + dt.timedelta(days=70), "999.00"),                            # cancelled below
                 (2, day + dt.timedelta(days=10), "25.00")], cancelled={4})
    h = histories(shop=shop, until=NOW)
    by_id = {pk: i for i, pk in enumerate(h.customer_ids)}
    one = by_id[Customer.objects.get(shop=shop, shopify_id=1).pk]
    two = by_id[Customer.objects.get(shop=shop, shopify_id=2).pk]
    assert (h.x[one], h.t_x[one], h.T[one], h.m_x[one]) == (2, 60, 100, 40.0)
    assert (h.x[two], h.t_x[two], h.T[two], h.m_x[two]) == (0, 0, 90, 0.0)


def test_too_little_history_fits_nothing(shop):
    place(shop, [(sid, NOW - dt.timedelta(days=sid), "20.00") for sid in range(1, 20)])
    assert shop_predictions_fit(shop=shop, now=NOW) is None
    assert not PredictionModel.objects.exists() and not CustomerPrediction.objects.exists()


def test_a_fit_on_the_models_own_process_recovers_it_and_scores_every_buyer(shop):
    place(shop, simulated(1500))
    model = shop_predictions_fit(shop=shop, now=NOW)
    buyers = Customer.objects.filter(shop=shop).count()
    assert model.customers == buyers == CustomerPrediction.objects.filter(shop=shop).count()
    # Purchases per day while alive (r / alpha) and the chance of dropping out (a / (a + b)), as drawn.
    assert model.r / model.alpha == pytest.approx(TRUE.r / TRUE.alpha, rel=0.3)
    assert model.a / (model.a + model.b) == pytest.approx(TRUE.a / (TRUE.a + TRUE.b), rel=0.3)
    rows = list(CustomerPrediction.objects.filter(shop=shop))
    assert all(0 < r.p_alive <= 1 and 0 <= r.orders_30d <= r.orders_90d <= r.orders_365d for r in rows)
    assert all(r.value_per_order is None or 20 <= r.value_per_order <= 80 for r in rows)
    assert sorted({r.value_percentile for r in rows})[-1] == 1.0 and min(r.value_percentile for r in rows) >= 0
    fitted = BgNbd(model.r, model.alpha, model.a, model.b)
    h = histories(shop=shop, until=NOW)
    index = {pk: i for i, pk in enumerate(h.customer_ids)}
    for row in rows[:200]:     # the next order day: the first whole day one more order is expected
        i = index[row.customer_id]
        if row.next_order_days is None:
            assert fitted.expected_purchases(365, h.x[i], h.t_x[i], h.T[i]) < 1
        else:
            assert fitted.expected_purchases(row.next_order_days, h.x[i], h.t_x[i], h.T[i]) >= 1 > \
                fitted.expected_purchases(row.next_order_days - 1, h.x[i], h.t_x[i], h.T[i])
    # Predicted against what happened in the 90 days the quality fit did not see: close in total.
    quality = model.quality
    assert quality["enough"] and sum(b["customers"] for b in quality["by_repeat"]) == quality["customers"]
    assert quality["predicted"] == pytest.approx(quality["actual"], rel=0.25)


def test_an_order_rescores_its_customer_with_the_stored_models(shop):
    place(shop, simulated(400))
    shop_predictions_fit(shop=shop, now=NOW)
    customer = Customer.objects.filter(shop=shop).order_by("pk").first()
    before = CustomerPrediction.objects.get(customer=customer)
    place(shop, [(customer.shopify_id, NOW - dt.timedelta(hours=1), "75.00")])
    assert customers_rescore(shop=shop, customer_ids=[customer.pk], now=NOW) == 1
    after = CustomerPrediction.objects.get(customer=customer)
    model = PredictionModel.objects.get(shop=shop)
    (x,) = histories(shop=shop, until=NOW, customer_ids=[customer.pk]).x
    # Just bought: alive unless they dropped out right after it (the model's a / (b + x - 1)).
    assert after.p_alive == pytest.approx(1 / (1 + model.a / (model.b + x - 1)))
    assert after.p_alive > before.p_alive and after.orders_90d > before.orders_90d
    others = CustomerPrediction.objects.exclude(customer=customer)
    assert all(r.scored_at == NOW for r in others)       # untouched


def test_rules_read_the_predictions_and_an_order_moves_a_customer(shop):
    place(shop, simulated(400))
    customer_metrics_rebuild(shop=shop, now=NOW)
    shop_predictions_fit(shop=shop, now=NOW)
    lost = segment_create(shop=shop, name="Lost", rules={"version": 1, "include": {
        "metric": "p_alive", "op": "lt", "value": "0.3"}})
    segments_recompute(shop=shop, now=NOW)
    expected = set(CustomerPrediction.objects.filter(p_alive__lt=0.3).values_list("customer_id", flat=True))
    assert expected and set(lost.memberships.values_list("customer_id", flat=True)) == expected
    # One of them orders again: the dirty refresh rescores them before their segments are recomputed.
    pk = sorted(expected)[0]
    sid = Customer.objects.get(pk=pk).shopify_id
    place(shop, [(sid, NOW + dt.timedelta(minutes=1), "30.00")])
    Customer.objects.filter(pk=pk).update(dirty_at=NOW, dirty_cause="orders/create")
    dirty_customers_refresh(shop=shop, now=NOW + dt.timedelta(minutes=2))
    assert CustomerPrediction.objects.get(customer_id=pk).p_alive > 0.5
    assert not lost.memberships.filter(customer_id=pk).exists()


def test_the_registrys_prediction_metrics_compile(shop):
    place(shop, simulated(300))
    customer_metrics_rebuild(shop=shop, now=NOW)
    shop_predictions_fit(shop=shop, now=NOW)
    soon = segment_create(shop=shop, name="Soon", rules={"version": 1, "include": {"all": [
        {"metric": "expected_next_order_days", "op": "lte", "value": 30},
        {"metric": "predicted_clv_percentile", "op": "gte", "value": "0.5"}]}})
    segments_recompute(shop=shop, now=NOW)
    expected = set(CustomerPrediction.objects.filter(next_order_days__lte=30, value_percentile__gte=0.5)
                   .values_list("customer_id", flat=True))
    assert set(soon.memberships.values_list("customer_id", flat=True)) == expected


def test_a_customer_who_is_no_longer_a_buyer_loses_their_predictions_at_the_next_fit(shop):
    place(shop, simulated(300))
    shop_predictions_fit(shop=shop, now=NOW)
    gone = Customer.objects.filter(shop=shop).order_by("pk").first()
    gone.orders.update(cancelled_at=NOW)
    shop_predictions_fit(shop=shop, now=NOW)
    assert not CustomerPrediction.objects.filter(customer=gone).exists()
    assert CustomerPrediction.objects.filter(shop=shop).count() == Customer.objects.filter(shop=shop).count() - 1


def money(value: float) -> Decimal | None:
    return None if np.isnan(value) else Decimal(str(round(value, 2))).quantize(Decimal("0.01"))


def test_the_fit_stores_the_models_of_the_histories_and_each_buyers_scores_as_they_are(shop):
    place(shop, simulated(400))
    model = shop_predictions_fit(shop=shop, now=NOW)
    h = histories(shop=shop, until=NOW)
    fitted = models_fit(h.x, h.t_x, h.T, np.maximum(h.m_x, 0.01))
    assert (model.r, model.alpha, model.a, model.b) == (fitted.purchases.r, fitted.purchases.alpha,
                                                        fitted.purchases.a, fitted.purchases.b)
    assert (model.p, model.q, model.gamma) == (fitted.value.p, fitted.value.q, fitted.value.gamma)
    scores = predictions_score(fitted, h.x, h.t_x, h.T, h.m_x)
    ranked, breakpoints = percentiles(np.nan_to_num(scores["predicted_value_365d"], nan=0.0))
    days = next_order_days(fitted.purchases, h.x, h.t_x, h.T)
    assert model.value_breakpoints == breakpoints
    rows = list(CustomerPrediction.objects.filter(shop=shop).order_by("customer_id"))
    assert [r.customer_id for r in rows] == h.customer_ids.tolist()
    for i, r in enumerate(rows):
        assert (r.p_alive, r.orders_30d, r.orders_90d, r.orders_365d, r.value_percentile) == (
            scores["p_alive"][i], scores["orders_30d"][i], scores["orders_90d"][i], scores["orders_365d"][i], ranked[i])
        assert (r.value_per_order, r.predicted_value) == (money(scores["value_per_order"][i]),
                                                          money(scores["predicted_value_365d"][i]))
        assert r.next_order_days == (None if np.isnan(days[i]) else int(days[i]))
    assert any(r.next_order_days is None for r in rows) and any(r.next_order_days is not None for r in rows)


def test_without_enough_repeat_buyers_for_spend_a_buyers_own_average_stands_in(shop):
    first = NOW - dt.timedelta(days=200)
    repeats = {1: ("0.12", "0.13"), 2: ("2.67", "2.68"), 3: ("0.01", "0.02"), 4: ("10.00", "10.01")}
    place(shop, [(sid, first + dt.timedelta(days=sid), "20.00") for sid in range(1, 61)]
          + [(sid, first + dt.timedelta(days=sid + 30 * n), total) for sid, totals in repeats.items()
             for n, total in enumerate(totals, start=1)])
    model = shop_predictions_fit(shop=shop, now=NOW)
    assert model.p is None and model.r > 0
    rows = {r.customer.shopify_id: r for r in CustomerPrediction.objects.filter(shop=shop).select_related("customer")}
    assert len(rows) == 60
    # Means of 0.125, 2.675, 0.015 and 10.005 to the cent as Python rounds them (0.125 is a half: to even).
    assert [rows[sid].value_per_order for sid in repeats] == [money(v) for v in (0.125, 2.675, 0.015, 10.005)] == [
        Decimal("0.12"), Decimal("2.67"), Decimal("0.01"), Decimal("10.01")]
    assert rows[6].value_per_order is None and rows[6].predicted_value is None


def test_cents_round_each_value_as_python_rounds_it():
    rng = np.random.default_rng(11)
    values = np.concatenate([
        [0.125, 0.375, 2.675, 1.005, 0.005, 0.015, 99.995, 1234567.125, -0.125, -2.675, 0.0, 1e-9, 5e11 + 0.125],
        rng.integers(0, 10**7, 50_000) / 1000,           # thousandths: a tenth of them are half cents
        rng.uniform(0, 1000, 50_000), rng.exponential(300, 50_000)])
    assert _cents(values).tolist() == [round(round(v, 2) * 100) for v in values.tolist()]
    assert np.isnan(_cents(np.array([np.nan, 1.0]))[0])
