"""Recording work that is already done (Shopify answered) is retried when PostgreSQL picks it as a
deadlock's victim; any other database error is not retried."""
import pytest
from django.db import OperationalError
from psycopg.errors import DeadlockDetected

from shopseg.deadlocks import retry_on_deadlock


def deadlock() -> OperationalError:
    error = OperationalError("deadlock detected")
    error.__cause__ = DeadlockDetected("deadlock detected")   # how Django wraps psycopg's error
    return error


def test_a_deadlocked_transaction_runs_again():
    calls = []

    def body():
        calls.append(1)
        if len(calls) < 3:
            raise deadlock()
        return "recorded"

    assert retry_on_deadlock(body, what="test") == "recorded" and len(calls) == 3


def test_other_errors_and_endless_deadlocks_propagate():
    calls = []

    def broken():
        calls.append(1)
        raise OperationalError("connection lost")

    with pytest.raises(OperationalError, match="connection lost"):
        retry_on_deadlock(broken, what="test")
    assert len(calls) == 1

    def always():
        raise deadlock()

    with pytest.raises(OperationalError, match="deadlock"):
        retry_on_deadlock(always, what="test")
