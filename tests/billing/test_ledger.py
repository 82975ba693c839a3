import os
import threading
from decimal import Decimal
from types import SimpleNamespace

import pytest
from allauth.mfa.models import Authenticator
from django.contrib.auth.models import Group
from django.db import IntegrityError, close_old_connections, connection, transaction
from django.urls import reverse

from accounts.errors import NotAllowed, PortalError
from accounts.models import AuditEvent
from billing import selectors, services
from billing.ledger import allocate_oldest_first
from billing.models import AppendOnlyError, LedgerEntry
from billing.money import Money
from tests.factories import AccountFactory, MembershipFactory, UserFactory, owner_of


def usd(value):
    return Money(Decimal(value), "USD")


def test_oldest_credit_is_used_first():
    entries = [
        SimpleNamespace(sequence=1, amount=Decimal("10"), description="seats"),
        SimpleNamespace(sequence=2, amount=Decimal("5"), description="refund"),
        SimpleNamespace(sequence=3, amount=Decimal("-12"), description="charge A"),
        SimpleNamespace(sequence=4, amount=Decimal("7"), description="goodwill"),
        SimpleNamespace(sequence=5, amount=Decimal("-4"), description="charge B"),
    ]
    lots = allocate_oldest_first(entries)
    assert [(lot.sequence, lot.used, lot.remaining) for lot in lots] == [
        (1, Decimal("10"), Decimal("0")),
        (2, Decimal("5"), Decimal("0")),
        (4, Decimal("1"), Decimal("6")),
    ]
    assert lots[1].taken_by == [(3, Decimal("2")), (5, Decimal("3"))]


def test_allocation_refuses_an_overdraw():
    with pytest.raises(ValueError, match="more credit than there is"):
        allocate_oldest_first([SimpleNamespace(sequence=1, amount=Decimal("-1"), description="x")])


@pytest.mark.django_db
class TestLedger:
    @pytest.fixture
    def account(self):
        return AccountFactory()

    @pytest.fixture
    def staff(self):
        user = UserFactory(is_staff=True)
        user.groups.add(Group.objects.get(name="Billing reviewer"))
        return user

    def test_credits_then_charges_apply_oldest_first_and_balance_is_the_sum(self, account):
        owner = owner_of(account)
        services.ledger_credit(
            actor=owner,
            account=account,
            amount=usd("10"),
            kind="seat_credit",
            description="2 seats removed",
        )
        services.ledger_credit(
            actor=None,
            account=account,
            amount=usd("5.005"),
            kind="refund_credit",
            description="Refund RR-1",
        )
        assert selectors.ledger_balance(account=account, currency="USD") == usd("15.01")
        left = services.ledger_apply_to_charge(account=account, charge=usd("12"), reference="inv-1")
        assert left == usd("0.00")
        left = services.ledger_apply_to_charge(account=account, charge=usd("20"), reference="inv-2")
        assert left == usd("16.99")
        view = selectors.ledger_view(account=account, currency="USD")
        assert view.balance == usd("0")
        assert [e.balance_after for e in view.entries] == [
            Decimal("0"),
            Decimal("3.01"),
            Decimal("15.01"),
            Decimal("10"),
        ]
        assert [lot.remaining for lot in view.lots] == [Decimal("0"), Decimal("0")]
        assert AuditEvent.objects.filter(action__startswith="ledger.").count() == 4

    def test_a_charge_with_no_credit_writes_nothing(self, account):
        left = services.ledger_apply_to_charge(account=account, charge=usd("9"), reference="inv")
        assert left == usd("9") and not LedgerEntry.objects.exists()

    def test_currencies_are_separate_ledgers(self, account):
        services.ledger_credit(
            actor=None,
            account=account,
            amount=Money(Decimal("3"), "EUR"),
            kind="seat_credit",
            description="x",
        )
        assert selectors.ledger_balance(account=account, currency="USD") == usd("0")
        assert services.ledger_apply_to_charge(
            account=account, charge=usd("2"), reference="r"
        ) == usd("2")

    def test_adjustment_by_staff_is_audited_and_cannot_go_below_zero(self, account, staff):
        services.ledger_adjust(actor=staff, account=account, amount=usd("20"), reason="Goodwill")
        with pytest.raises(PortalError) as exc:
            services.ledger_adjust(actor=staff, account=account, amount=usd("-25"), reason="Fix")
        assert exc.value.field == "amount" and "cannot go below zero" in exc.value.message
        services.ledger_adjust(actor=staff, account=account, amount=usd("-20"), reason="Fix")
        event = AuditEvent.objects.filter(action="ledger.adjusted").first()
        assert event.actor == staff and event.account == account

    def test_customers_cannot_adjust(self, account):
        with pytest.raises(NotAllowed):
            services.ledger_adjust(
                actor=owner_of(account), account=account, amount=usd("5"), reason="Me"
            )

    def test_database_refuses_a_negative_balance_and_a_reused_sequence(self, account):
        with pytest.raises(IntegrityError), transaction.atomic():
            LedgerEntry.objects.create(
                account=account,
                currency="USD",
                sequence=1,
                amount=Decimal("-1"),
                balance_after=Decimal("-1"),
                kind="adjustment",
                description="x",
            )
        services.ledger_credit(
            actor=None, account=account, amount=usd("1"), kind="seat_credit", description="x"
        )
        with pytest.raises(IntegrityError), transaction.atomic():
            LedgerEntry.objects.create(
                account=account,
                currency="USD",
                sequence=1,
                amount=Decimal("1"),
                balance_after=Decimal("2"),
                kind="adjustment",
                description="x",
            )

    def test_entries_are_append_only(self, account):
        entry = services.ledger_credit(
            actor=None, account=account, amount=usd("1"), kind="seat_credit", description="x"
        )
        entry.amount = Decimal("100")
        with pytest.raises(AppendOnlyError):
            entry.save()
        with pytest.raises(AppendOnlyError):
            entry.delete()

    def test_billing_page_shows_the_balance_and_how_credits_were_used(self, client, account):
        services.ledger_credit(
            actor=None,
            account=account,
            amount=usd("10"),
            kind="seat_credit",
            description="2 seats removed on 3 March",
        )
        services.ledger_apply_to_charge(account=account, charge=usd("4"), reference="invoice 7")
        client.force_login(owner_of(account))
        body = client.get(reverse("billing_credits")).content.decode()
        assert "<strong>$6.00</strong>" in body
        assert "2 seats removed on 3 March" in body and "Applied to invoice 7" in body
        assert "$6.00" in client.get(reverse("settings_billing")).content.decode()
        member = MembershipFactory(account=account, role="member")
        client.force_login(member.user)
        assert client.get(reverse("settings_billing")).status_code == 403
        assert client.get(reverse("billing_credits")).status_code == 403

    def test_staff_adjust_in_the_console(self, client, account, staff):
        Authenticator.objects.create(user=staff, type=Authenticator.Type.TOTP, data={"s": 1})
        client.force_login(staff)
        url = reverse("admin:billing_ledgerentry_add")
        form = {"account": account.pk, "currency": "USD", "amount": "-5", "description": "Oops"}
        response = client.post(url, form)
        assert response.status_code == 200 and "cannot go below zero" in response.content.decode()
        assert not LedgerEntry.objects.exists()
        response = client.post(url, {**form, "amount": "12.50", "description": "Goodwill"})
        assert response.status_code == 302
        entry = LedgerEntry.objects.get()
        assert entry.amount == Decimal("12.50") and entry.created_by == staff
        assert client.get(reverse("admin:billing_ledgerentry_changelist")).status_code == 200


@pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"), reason="needs PostgreSQL"
)
@pytest.mark.django_db(transaction=True)
def test_concurrent_charges_never_overdraw_the_balance():
    account = AccountFactory()
    services.ledger_credit(
        actor=None, account=account, amount=usd("10"), kind="seat_credit", description="x"
    )
    barrier = threading.Barrier(2)
    left = []

    def charge():
        try:
            barrier.wait(timeout=5)
            left.append(
                services.ledger_apply_to_charge(account=account, charge=usd("7"), reference="r")
            )
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=charge) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert sorted(m.amount for m in left) == [Decimal("0.00"), Decimal("4.00")]
    assert selectors.ledger_balance(account=account, currency="USD") == usd("0")
