"""Group commit: deliveries recorded while a commit is in flight share the next transaction; each
caller gets its own result, and a delivery that fails fails only itself."""
import threading

from webhooks.group_commit import GroupCommit


class Store:
    """Writes that can be held mid-commit, recording every transaction they ran."""

    def __init__(self) -> None:
        self.hold = threading.Event()
        self.entered = threading.Event()
        self.transactions: list[list] = []

    def write_many(self, deliveries):
        if any(d == "bad" for d in deliveries):
            raise ValueError("one refused payload aborts the transaction")
        self.transactions.append(list(deliveries))
        return [f"row:{d}" for d in deliveries]

    def write_one(self, delivery):
        if delivery == "first":
            self.entered.set()
            self.hold.wait(10)
        if delivery == "bad":
            raise ValueError("refused")
        self.transactions.append([delivery])
        return f"row:{delivery}"


def run(group: GroupCommit, deliveries, results: dict) -> list[threading.Thread]:
    def submit(d):
        try:
            results[d] = group.submit(d)
        except ValueError as exc:
            results[d] = exc
    threads = [threading.Thread(target=submit, args=(d,)) for d in deliveries]
    for t in threads:
        t.start()
    return threads


def wait_queued(group: GroupCommit, count: int) -> None:
    for _ in range(1000):
        with group._cond:
            if len(group._queue) >= count:
                return
        threading.Event().wait(0.005)
    raise AssertionError("deliveries never queued")


def test_deliveries_arriving_during_a_commit_share_the_next_transaction():
    store = Store()
    group = GroupCommit(store.write_many, store.write_one)
    results: dict = {}
    first = run(group, ["first"], results)
    assert store.entered.wait(5)                   # the first delivery is being committed alone
    others = run(group, [f"d{n}" for n in range(6)], results)
    wait_queued(group, 6)
    store.hold.set()
    for t in first + others:
        t.join(5)
    assert store.transactions[0] == ["first"]
    assert sorted(store.transactions[1]) == [f"d{n}" for n in range(6)] and len(store.transactions) == 2
    assert results == {"first": "row:first", **{f"d{n}": f"row:d{n}" for n in range(6)}}
    assert (group.batches, group.rows) == (2, 7)


def test_a_refused_delivery_fails_only_itself():
    store = Store()
    group = GroupCommit(store.write_many, store.write_one)
    results: dict = {}
    first = run(group, ["first"], results)
    assert store.entered.wait(5)
    others = run(group, ["a", "bad", "b"], results)
    wait_queued(group, 3)
    store.hold.set()
    for t in first + others:
        t.join(5)
    assert isinstance(results["bad"], ValueError)
    assert (results["a"], results["b"]) == ("row:a", "row:b")
    # the batch rolled back whole, then each was written on its own; the refused one wrote nothing
    assert sorted(map(tuple, store.transactions)) == [("a",), ("b",), ("first",)]


def test_one_delivery_alone_is_written_at_once():
    store = Store()
    group = GroupCommit(store.write_many, store.write_one)
    assert group.submit("x") == "row:x"
    assert store.transactions == [["x"]] and (group.batches, group.rows) == (1, 1)
