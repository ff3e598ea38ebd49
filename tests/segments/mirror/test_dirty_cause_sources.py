"""The backfill and reconciliation name themselves as the dirty_cause of what they load (against devstore)."""
import pytest

from segments.mirror.cause import current_dirty_cause
from segments.mirror.models import BackfillStatus, Customer
from segments.mirror.reconcile import shop_reconcile
from tests.segments.mirror.test_backfill import run_backfill, seeded_install
from tests.segments.mirror.test_reconcile import lost_traffic

pytestmark = pytest.mark.django_db


def causes(shop) -> set[str]:
    return set(Customer.objects.filter(shop=shop, dirty_at__isnull=False).values_list("dirty_cause", flat=True))


@pytest.fixture
def backfilled(client, devstore, settings, django_capture_on_commit_callbacks):
    shop = seeded_install(client, devstore, settings, django_capture_on_commit_callbacks, customers=40)
    assert run_backfill(devstore, shop).backfill_status == BackfillStatus.DONE
    return shop


def test_the_backfill_marks_every_customer_it_loads_with_backfill(backfilled):
    shop = backfilled
    customers = Customer.objects.filter(shop=shop)
    assert customers.count() >= 40
    assert not customers.filter(dirty_at__isnull=True).exists()
    assert causes(shop) == {"backfill"}
    assert current_dirty_cause() == ""


def test_reconciliation_marks_what_it_repairs_with_reconcile(devstore, backfilled):
    shop = backfilled
    Customer.objects.filter(shop=shop).update(dirty_at=None, dirty_cause="")
    lost_traffic(devstore, shop, count=40)

    assert shop_reconcile(shop_id=shop.pk) > 0

    assert causes(shop) == {"reconcile"}
    untouched = Customer.objects.filter(shop=shop, dirty_at__isnull=True)
    assert untouched.exists() and set(untouched.values_list("dirty_cause", flat=True)) == {""}
    assert current_dirty_cause() == ""
