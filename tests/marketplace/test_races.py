"""The same Idempotency-Key from two threads at once is one record (PostgreSQL row locks).
Skipped without PostgreSQL; CI runs it."""

import os
from decimal import Decimal

import pytest

from billing.models import UsageRecord
from marketplace import services
from marketplace.models import AppUsage, Installation
from tests.races import assert_only_refusals, run_together

from .conftest import plan_of

pytestmark = [
    pytest.mark.skipif(
        not os.environ.get("DATABASE_URL", "").startswith("postgres"), reason="needs PostgreSQL"
    ),
    pytest.mark.django_db(transaction=True),
]


def test_one_key_from_two_threads_is_one_record(make_app, owner, account):
    app = make_app("sms", "usage", "0.05")
    inst = services.installation_install(
        actor=owner, account=account, app=app, plan=plan_of(app)
    ).installation

    def call():
        return services.usage_report(
            app=app, installation_id=inst.pk, quantity=3, idempotency_key="same"
        )

    outcomes = run_together(call, call, call)
    assert_only_refusals(outcomes)
    assert sorted(o.created for o in outcomes) == [False, False, True]
    assert AppUsage.objects.count() == 1 and UsageRecord.objects.count() == 1
    assert Installation.objects.get(pk=inst.pk).usage_units == 3


def test_the_cap_holds_under_concurrent_use(make_app, owner, account):
    app = make_app("sms", "usage", "0.05")
    inst = services.installation_install(
        actor=owner, account=account, app=app, plan=plan_of(app), usage_cap="1.00"
    ).installation

    def call(n):
        return lambda: services.usage_report(
            app=app, installation_id=inst.pk, quantity=8, idempotency_key=f"k{n}"
        )

    outcomes = run_together(*(call(n) for n in range(4)))  # 4 x 0.40 against a 1.00 cap
    assert_only_refusals(outcomes)
    assert sum(not isinstance(o, Exception) for o in outcomes) == 2
    assert Installation.objects.get(pk=inst.pk).usage_amount == Decimal("0.80")
