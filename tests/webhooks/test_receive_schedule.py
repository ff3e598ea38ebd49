"""The fast path's coalesced drain scheduling: every commit is followed by a call made after it."""
import threading
import time

from webhooks.fastpath import CoalescedSchedule


class Recorder:
    def __init__(self, seconds: float = 0.0):
        self.calls: list[float] = []
        self.seconds = seconds
        self.lock = threading.Lock()

    def __call__(self):
        with self.lock:
            self.calls.append(time.monotonic())
        time.sleep(self.seconds)


def wait_for(check, seconds=5.0):
    deadline = time.monotonic() + seconds
    while not check() and time.monotonic() < deadline:
        time.sleep(0.005)
    return check()


def test_a_single_commit_is_scheduled_at_once():
    calls = Recorder()
    schedule = CoalescedSchedule(calls, interval=0.05)
    notified = time.monotonic()
    schedule.notify()
    assert wait_for(lambda: len(calls.calls) == 1)
    assert calls.calls[0] >= notified and calls.calls[0] - notified < 1.0


def test_a_burst_shares_calls_and_its_last_commit_still_gets_one_after_it():
    calls = Recorder(seconds=0.002)
    schedule = CoalescedSchedule(calls, interval=0.05)
    notified = []
    for _ in range(200):
        schedule.notify()
        notified.append(time.monotonic())
        time.sleep(0.001)
    assert wait_for(lambda: calls.calls and calls.calls[-1] > notified[-1])
    time.sleep(0.2)
    assert len(calls.calls) < 20          # ~0.25 s of commits, a call at most every 50 ms
    for at in notified:                   # each commit has a call that started after it
        assert any(call > at for call in calls.calls)


def test_notifications_from_many_threads_are_all_covered():
    calls = Recorder()
    schedule = CoalescedSchedule(calls, interval=0.01)
    stamps, lock = [], threading.Lock()

    def commit_many():
        for _ in range(50):
            schedule.notify()
            with lock:
                stamps.append(time.monotonic())
            time.sleep(0.0005)

    threads = [threading.Thread(target=commit_many) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wait_for(lambda: calls.calls and calls.calls[-1] > max(stamps))


def test_a_failing_schedule_does_not_stop_the_thread():
    attempts = []

    def flaky():
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("boom")

    schedule = CoalescedSchedule(flaky, interval=0.01)
    schedule.notify()
    assert wait_for(lambda: len(attempts) == 1)
    schedule.notify()
    assert wait_for(lambda: len(attempts) == 2)


def test_flush_makes_a_pending_call_now():
    calls = Recorder()
    schedule = CoalescedSchedule(calls, interval=10)   # the thread would wait 10 s before its next call
    schedule.notify()
    assert wait_for(lambda: len(calls.calls) == 1)
    schedule.notify()                                  # pending while the thread sleeps
    schedule.flush()                                   # what the process does on its way out
    assert len(calls.calls) == 2
    schedule.flush()                                   # nothing pending: no call
    assert len(calls.calls) == 2
