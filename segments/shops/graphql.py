"""Every GraphQL Admin API call the app makes to a shop goes out here, one way: within the shop's
shared cost budget (segments.shops.throttle), with one retry policy.

Reconciliation, the backfill, install, webhook subscriptions, tag sync and metafields all spend the
same bucket, which Shopify keeps per (app, shop): a caller pacing on its own last answer alone
cannot see what the others took, and sends into a bucket they emptied (THROTTLED). So a request
reserves its cost first and settles with Shopify's throttleStatus when the answer comes. The cost
reserved is what the caller knows (10 points a tag mutation), else what Shopify asked for the same
document last time (requestedQueryCost, remembered by this process), else the most a query may cost.

THROTTLED (which should not happen, but another app's requests do not share our estimate) waits as
the budget says and is sent again, at most MAX_THROTTLED times in a row; 5xx, 429 and network errors
back off with jitter up to `max_transient_wait` seconds, then ShopifyTransientError propagates.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from segments.shops.throttle import ShopThrottle
from segments.shops.tokens import ShopUnavailable, with_shop_client
from shopseg.retries import shopify_retry_delay
from shopseg.shopify.client import GraphQLResult, ShopClient, throttle_status
from shopseg.shopify.errors import ShopifyAuthError, ShopifyQueryError, ShopifyTransientError

T = TypeVar("T")
MAX_QUERY_COST = 1000.0        # Shopify's cap for one request: what an unknown document may cost
MAX_THROTTLED = 30             # THROTTLED answers in a row for one request before giving up
MAX_TRANSIENT_WAIT = 60.0      # seconds one request may spend on 5xx / network retries
KNOWN_COSTS = 512              # documents whose requested cost this process remembers

# Looked up at call time, so tests can run the budget's waits on a clock of their own.
clock: Callable[[], float] = time.time
sleep: Callable[[float], None] = time.sleep

_costs: OrderedDict[str, float] = OrderedDict()
_costs_lock = threading.Lock()


def _known_cost(query: str) -> float | None:
    with _costs_lock:
        return _costs.get(query)


def _remember_cost(query: str, cost: dict | None, requested: float | None = None) -> float | None:
    requested = requested if requested is not None else (cost or {}).get("requestedQueryCost")
    if requested is None:
        return None
    with _costs_lock:
        _costs[query] = float(requested)
        _costs.move_to_end(query)
        while len(_costs) > KNOWN_COSTS:
            _costs.popitem(last=False)
    return float(requested)


def shop_throttle(shop_id: int) -> ShopThrottle:
    """The shop's shared budget, waiting on this module's clock."""
    return ShopThrottle(shop_id, clock=lambda: clock(), sleep=lambda seconds: sleep(seconds))


@dataclass
class ShopSender:
    """Sends one shop's GraphQL calls through its shared budget, retrying what is transient."""
    client: ShopClient
    throttle: ShopThrottle
    max_transient_wait: float = MAX_TRANSIENT_WAIT
    requests: int = 0
    points: float = 0.0
    throttled: int = 0
    transient: int = 0

    def call(self, query: str, variables: dict | None = None, cost: float | None = None) -> GraphQLResult:
        """One GraphQL call within the budget (`cost`: the points it will ask for, when known)."""
        needed = cost if cost is not None else _known_cost(query) or MAX_QUERY_COST
        waited, attempt, throttled = 0.0, 0, 0
        while True:
            reservation = self.throttle.reserve(needed)
            try:
                result = self.client.graphql(query, variables)
            except ShopifyTransientError as exc:
                if exc.cost:      # THROTTLED: nothing was charged; Shopify's status says what is there
                    self.throttle.settle(reservation, throttle_status(exc.cost))
                    needed = max(needed, _remember_cost(query, exc.cost) or 0.0)
                    self.throttled += 1
                    throttled += 1
                    if throttled > MAX_THROTTLED:
                        raise
                    continue
                self.throttle.settle(reservation)
                self.transient += 1
                attempt += 1
                wait = shopify_retry_delay(exc, attempt, base=0.5, cap=15.0)
                if waited + wait > self.max_transient_wait:
                    raise
                sleep(wait)
                waited += wait
                continue
            except BaseException:
                self.throttle.settle(reservation)
                raise
            self.throttle.settle(reservation, result.throttle)
            _remember_cost(query, None, result.requested_cost)
            self.requests += 1
            self.points += result.actual_cost if result.actual_cost is not None else needed
            return result


S = TypeVar("S", bound=ShopSender)


def with_shop_sender(*, shop_id: int, call: Callable[[S], T], max_transient_wait: float = MAX_TRANSIENT_WAIT,
                     sender: type[S] = ShopSender) -> T:
    """Run `call` with the shop's sender (a 401 refreshes the token once and runs it again); `sender`
    may be a subclass that adds operations of its own (tag sync's aliased mutations)."""
    throttle = shop_throttle(shop_id)
    return with_shop_client(shop_id=shop_id, call=lambda client: call(
        sender(client, throttle, max_transient_wait=max_transient_wait)))


def shop_sender_run(*, shop_id: int, call: Callable[[S], object], what: str,
                    max_transient_wait: float = MAX_TRANSIENT_WAIT, sender: type[S] = ShopSender) -> str:
    """A background run of `call` with the shop's sender (tag sync, Flow triggers): "" when it ran to
    its end, else why it stopped ("unavailable", or the Shopify error, logged as `what` stopping)."""
    try:
        with_shop_sender(shop_id=shop_id, call=call, max_transient_wait=max_transient_wait, sender=sender)
    except ShopUnavailable:
        return "unavailable"
    except (ShopifyTransientError, ShopifyAuthError, ShopifyQueryError) as exc:
        stopped = f"{type(exc).__name__}: {exc}"[:200]
        logging.getLogger(__name__).warning("%s for shop %s stopped: %s", what, shop_id, stopped)
        return stopped
    return ""


def shop_graphql(*, shop_id: int, query: str, variables: dict | None = None, cost: float | None = None,
                 max_transient_wait: float = MAX_TRANSIENT_WAIT) -> GraphQLResult:
    """One call through the shop's sender."""
    return with_shop_sender(shop_id=shop_id, call=lambda sender: sender.call(query, variables, cost),
                            max_transient_wait=max_transient_wait)
