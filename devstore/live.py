"""A store that keeps living: one background traffic simulator per shop, at a gentle rate, started and
stopped through the control API (the demo starts it once the admin URL is printed): shopper and
merchant actions as webhooks, and shoppers browsing the storefront as the shop's app pixels see them."""
from __future__ import annotations

import logging
import threading
from collections import Counter

from .shoppers import ShopperSimulator
from .simulator import TrafficSimulator
from .state import DevStore

log = logging.getLogger("devstore.live")

# One step in a hundred is the merchant editing a variant's cost (inventory_items/update).
COST_CHANGE_RATE = 0.01


class LiveTraffic:
    """Shop → a simulator running in its own thread until stopped (or replaced at another rate)."""

    def __init__(self, store: DevStore) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._running: dict[str, tuple[threading.Event, threading.Thread, Counter]] = {}

    def start(self, shop: str, *, rate: float, seed: int) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.stop(shop)
        sim = TrafficSimulator(self._store, shop, seed=seed, rate_per_second=rate, cost_change_rate=COST_CHANGE_RATE)
        browsing = ShopperSimulator(self._store, shop, seed=seed + 1)
        counts: Counter = Counter()
        stop = threading.Event()
        thread = threading.Thread(target=_run, args=(sim, browsing, 1.0 / rate, stop, counts), name=f"live {shop}",
                                  daemon=True)
        with self._lock:
            self._running[shop] = (stop, thread, counts)
        thread.start()

    def stop(self, shop: str) -> None:
        with self._lock:
            running = self._running.pop(shop, None)
        if running:
            running[0].set()
            running[1].join(10)

    def stop_all(self) -> None:
        for shop in list(self._running):
            self.stop(shop)

    def status(self, shop: str) -> dict:
        with self._lock:
            running = self._running.get(shop)
        if running is None:
            return {"running": False, "actions": {}}
        return {"running": running[1].is_alive(), "actions": dict(running[2])}


def _run(sim: TrafficSimulator, browsing: ShopperSimulator, interval: float, stop: threading.Event,
         counts: Counter) -> None:
    """An action, and a shopper's visit to the storefront (sent to the shop's app pixels), per tick."""
    while not stop.wait(interval):
        try:
            counts[sim.step()] += 1
            counts.update({f"visit {k}": n for k, n in browsing.run(1).items() if k != "pixels"})
        except Exception:   # noqa: BLE001 - a living store must not die of one failed action
            counts["failed"] += 1
            log.exception("live traffic action failed; going on")
