"""A renewal's audit rows in one insert (audit_batch), and the licence screen set on the
account row its caller locked (issue 16): the same rows as one by one, fewer queries."""

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from accounts import services
from accounts.models import Account, AuditEvent
from billing.locks import lock_account
from tests.factories import AccountFactory

pytestmark = pytest.mark.django_db

FIELDS = ("actor_id", "actor_email", "action", "object_type", "object_repr", "changes")


def _steps(account):
    return AuditEvent.objects.filter(account=account, action__startswith="test.").order_by("pk")


def _record(account, n):
    services.audit_record(
        actor=None, action=f"test.step{n}", target=account, account=account, changes={"n": n}
    )


def test_a_batch_writes_the_same_rows_in_one_insert_in_the_order_recorded():
    one_by_one, batched = AccountFactory(name="Acme"), AccountFactory(name="Acme")
    with transaction.atomic():
        for n in range(3):
            _record(one_by_one, n)
    with (
        transaction.atomic(),
        CaptureQueriesContext(connection) as queries,
        services.audit_batch(),
    ):
        for n in range(3):
            _record(batched, n)
        assert not _steps(batched).exists()
    inserts = [q for q in queries.captured_queries if "accounts_auditevent" in q["sql"]]
    assert len(inserts) == 2  # the look above, and the one insert

    def rows(account):
        return [
            (e.object_id == str(account.pk), *(getattr(e, f) for f in FIELDS))
            for e in _steps(account)
        ]

    assert rows(batched) == rows(one_by_one)
    times = list(_steps(batched).values_list("created_at", flat=True))
    assert times == sorted(times)  # each keeps the time it was recorded


def test_a_batch_that_fails_writes_nothing_and_a_savepoint_rolled_back_takes_its_rows():
    account = AccountFactory()
    with pytest.raises(RuntimeError), transaction.atomic(), services.audit_batch():
        _record(account, 1)
        raise RuntimeError("the change fails")
    assert not _steps(account).exists()

    with transaction.atomic(), services.audit_batch():
        _record(account, 1)
        with pytest.raises(RuntimeError), transaction.atomic():
            _record(account, 2)  # inside a savepoint: written at once, rolled back with it
            raise RuntimeError("this step fails")
        _record(account, 3)
    assert list(_steps(account).values_list("action", flat=True)) == ["test.step1", "test.step3"]


def test_the_licence_screen_on_the_callers_locked_row_writes_the_same_without_a_second_lock():
    mine, theirs = AccountFactory(status="active"), AccountFactory(status="active")
    services.account_set_licence_screen(account=theirs, on=True, reason="lapsed")
    with transaction.atomic():
        locked = lock_account(mine.pk)
        with CaptureQueriesContext(connection) as queries:
            services.account_set_licence_screen(
                account=locked, on=True, reason="lapsed", locked=True
            )
    assert len(queries) == 2  # its status, and its audit row
    for account in (mine, theirs):
        account.refresh_from_db()
        assert account.status == Account.Status.LICENSE_SCREEN
    assert [
        e.changes for e in AuditEvent.objects.filter(account=mine, action="account.status_changed")
    ] == [
        e.changes
        for e in AuditEvent.objects.filter(account=theirs, action="account.status_changed")
    ]


@pytest.mark.django_db(transaction=True)
def test_a_batch_and_a_locked_row_need_the_callers_transaction():
    account = AccountFactory(status="license_screen")
    with pytest.raises(RuntimeError), services.audit_batch():
        pass
    with pytest.raises(RuntimeError):  # outside a transaction no lock is held
        services.account_set_licence_screen(account=account, on=False, reason="x", locked=True)
    account.refresh_from_db()
    assert account.status == "license_screen"
