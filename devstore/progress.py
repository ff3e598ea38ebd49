"""The demo's progress lines: done/total, rate and time left for a long step, and never more than a
few seconds of silence. Commands report with `shopseg.progress.progress_line`."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Ticker:
    """Prints `label: done/total unit (rate/s, ~N s left)` every `every` seconds while a step runs."""

    def __init__(self, label: str, say: Callable[[str], None], every: float = 5.0) -> None:
        self.label = label
        self._say = say
        self._every = every
        self._started = time.monotonic()
        self._first: tuple[float, int] | None = None    # (when, done) of the first report: the rate's base
        self._latest: tuple[int, int, str] | None = None
        self._spoke = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"ticker {label}", daemon=True)

    def __enter__(self) -> Ticker:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        if self._spoke and self._latest is not None:   # a long step ends with where it ended
            self._say(self.line())

    def update(self, done: int, total: int, unit: str) -> None:
        with self._lock:
            if self._first is None or (self._latest and self._latest[2] != unit):   # a new phase: a new rate
                self._first = (time.monotonic(), done)
            self._latest = (done, total, unit)

    def line(self) -> str:
        """The line printed now (also used once the step ends)."""
        elapsed = time.monotonic() - self._started
        with self._lock:
            latest, first = self._latest, self._first
        if latest is None:
            return f"   {self.label}: working ({elapsed:.0f} s)"
        done, total, unit = latest
        text = f"   {self.label}: {done:,}/{total:,} {unit}"
        seconds = time.monotonic() - first[0]
        rate = (done - first[1]) / seconds if seconds > 0.5 else 0.0
        if rate > 0:
            left = max(0.0, (total - done) / rate)
            text += f" ({rate:,.0f}/s, ~{left:,.0f} s left)" if done < total else f" ({rate:,.0f}/s)"
        return text + f" [{elapsed:.0f} s]"

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            self._spoke = True
            self._say(self.line())
