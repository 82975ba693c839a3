"""Money moves exactly once and never more than was paid, whatever happens in between.

Hypothesis plays random sequences of purchases (by card or bank transfer, part paid with
credit), refund requests, partial and full approvals to the card or as credit, card
refunds that succeed, fail or stay pending, retries, replayed and stale gateway
notifications, manual payouts and credits used. After every step:

- for every line, what came back is the sum of its refund records and at most what was
  paid for it; its units used and taken back fit in the pack;
- for every payment, what was refunded is the sum of its records and at most its amount,
  and the gateway was never asked to give back more than it took;
- every ledger balance is the sum of its entries and never below zero;
- the stored credit-pack balance (units bought, used, taken back) is the sum over the
  account's paid packs;
- the money out (refunded on payments plus refund credit) is the sum of the payouts that
  succeeded, and of the refund records.
"""

import contextlib
import os
from decimal import Decimal

from django.db.models import Sum
from django.test import override_settings
from hypothesis import HealthCheck, event, given, settings, target
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase

from accounts.errors import PortalError
from billing import gateways
from billing import selectors as billing_selectors
from billing import services as billing_services
from billing.gateways import ChargeResult
from billing.models import LedgerEntry, LineRefund, Order, OrderLine, Payment, Price, Product
from billing.money import Money
from refunds import services
from refunds.models import RefundPayout, RefundRequest
from tests.factories import AccountFactory, UserFactory, owner_of
from tests.refunds.conftest import MONDAY

EXAMPLES = int(os.environ.get("MONEY_PROPERTY_EXAMPLES", "100"))


class FakeGateway:
    """A card gateway that answers as the step says, and remembers what it gave back."""

    name = "stripe"
    outcome = "succeeded"
    given_back: dict = {}  # idempotency key -> (charge reference, amount, payout id)

    def charge(self, *, account, amount, idempotency_key, description, payment_id=None):
        return ChargeResult(status="succeeded", reference=f"pi_{payment_id}")

    def refund(self, *, charge_reference, amount, idempotency_key, metadata):
        if FakeGateway.outcome == "failed":
            return ChargeResult(status="failed", message="card closed")
        FakeGateway.given_back.setdefault(
            idempotency_key,
            (charge_reference, amount.amount, int(metadata["refund_payout_id"])),
        )
        status = "pending" if FakeGateway.outcome == "pending" else "succeeded"
        return ChargeResult(status=status, reference=f"re_{idempotency_key[-12:]}")


index = st.integers(min_value=0, max_value=7)
BUY = st.tuples(
    st.just("buy"),
    st.sets(st.sampled_from(["credits", "plugin", "storage"]), min_size=1),
    st.sampled_from(["stripe", "manual"]),
)
ASK = st.tuples(
    st.just("ask"),
    index,
    st.sets(st.integers(0, 2), min_size=1),
    st.sampled_from(["original", "credit"]),
    st.booleans(),
)
DECIDE = st.tuples(st.just("decide"), index, st.lists(st.sampled_from(["all", "half", "deny"])))
RUN = st.tuples(st.just("run"), index, st.sampled_from(["succeeded", "failed", "pending"]))
MANUAL = st.tuples(st.just("manual"), index)
# Payouts run and are recorded more often than the rest happens, so that most examples
# move money.
AFTER = st.one_of(
    RUN,
    MANUAL,
    RUN,
    MANUAL,
    st.tuples(st.just("retry"), index),
    st.tuples(st.just("replay_success"), index),
    st.tuples(st.just("stale_failure"), index),
    st.tuples(st.just("another_way"), index, st.sampled_from(["manual", "credit"])),
    st.tuples(st.just("use"), st.integers(1, 600)),
    st.tuples(st.just("credit"), st.sampled_from(["10", "60", "149"])),
    BUY,
)
# A round: a request, its decision, and what happens to its money; rounds follow each
# other on the same purchases, so later requests meet what earlier ones paid back.
ROUND = st.tuples(ASK, DECIDE, st.lists(AFTER, min_size=1, max_size=4)).map(
    lambda r: [r[0], r[1], *r[2]]
)
# Every sequence starts with a purchase, so that the rounds have something to refund.
STEPS = st.tuples(
    BUY,
    st.lists(st.one_of(BUY, AFTER), max_size=2),
    st.lists(ROUND, min_size=1, max_size=4),
).map(lambda s: [s[0], *s[1], *(step for round_ in s[2] for step in round_)])


# What customers and staff choose may be refused; what gateways report, and payouts
# staff record, may not.
CHOICES = {"buy", "credit", "ask", "decide", "use", "another_way"}


@override_settings(REFUND_POLICY="acelle", VENDOR_TIMEZONE="America/New_York")
class MoneyMovesOnce(TestCase):
    def setUp(self):
        self._gateways = dict(gateways.GATEWAYS)
        gateways.GATEWAYS["stripe"] = f"{__name__}.FakeGateway"
        FakeGateway.outcome, FakeGateway.given_back = "succeeded", {}

    def tearDown(self):
        gateways.GATEWAYS.clear()
        gateways.GATEWAYS.update(self._gateways)

    def _world(self):
        from django.contrib.auth.models import Group

        self.account = AccountFactory(name="Acme", timezone="America/New_York")
        self.owner = owner_of(self.account)
        self.staff = UserFactory(is_staff=True)
        self.staff.groups.add(Group.objects.get(name="Billing reviewer"))

        def price(code, kind, amount, **extra):
            product = Product.objects.create(code=code, name=code.title(), kind=kind, **extra)
            return Price.objects.create(
                product=product, currency="USD", amount=Decimal(amount), interval="one_off"
            )

        self.prices = {
            "credits": price("credits", "credit_pack", "100", units=1000),
            "plugin": price("plugin", "plugin", "49"),
            "storage": price("storage", "quota_addon", "20"),
        }
        self.orders, self.requests = [], []

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(steps=STEPS)
    def test_no_line_or_payment_ever_gets_back_more_than_was_paid(self, steps):
        FakeGateway.outcome, FakeGateway.given_back = "succeeded", {}
        self._world()
        for step in steps:
            if step[0] in CHOICES:
                # A choice the rules refuse is a clean refusal, and nothing moves.
                with contextlib.suppress(PortalError):
                    getattr(self, f"_{step[0]}")(*step[1:])
            else:  # money the gateway or staff moved must always be taken
                getattr(self, f"_{step[0]}")(*step[1:])
            self._check()
        # Steer the search towards examples that move more money, and show (with
        # --hypothesis-show-statistics) how far they got.
        target(float(LineRefund.objects.count()), label="refund records")
        event(f"refund records: {min(LineRefund.objects.count(), 4)}")
        event(f"a payout retried: {RefundPayout.objects.filter(attempts__gt=1).exists()}")

    # --- the steps --------------------------------------------------------------------

    def _buy(self, items, gateway):
        with override_settings(BILLING_GATEWAY=gateway):
            order = billing_services.purchase_place(
                actor=self.owner,
                account=self.account,
                items=[{"price": self.prices[name].pk} for name in sorted(items)],
                now=MONDAY,
            )
            payment = order.payments.filter(status="pending").first()
            if payment is not None and gateway == "stripe":
                billing_services.payment_request(payment_id=payment.pk)
            elif order.status == Order.Status.AWAITING_PAYMENT:
                billing_services.payment_record_manual(
                    actor=self.staff, order=order, reference=f"BANK-{order.pk}", now=MONDAY
                )
        self.orders.append(order)

    def _credit(self, amount):
        billing_services.ledger_adjust(
            actor=self.staff,
            account=self.account,
            amount=Money(Decimal(amount), "USD"),
            reason="goodwill",
        )

    def _ask(self, order_index, picks, payout, full_order):
        if not self.orders:
            return
        order = self.orders[order_index % len(self.orders)]
        lines = list(order.lines.order_by("pk"))
        chosen = [lines[i % len(lines)] for i in sorted(picks)]
        self.requests.append(
            services.refund_request_submit(
                actor=self.owner,
                account=self.account,
                line_ids=[line.pk for line in chosen],
                reason="no_longer_needed",
                payout_method=payout,
                full_order=full_order,
                now=MONDAY,
            )
        )

    def _decide(self, request_index, choices):
        if not self.requests:
            return
        request = self.requests[-1 - request_index % len(self.requests)]  # 0: the newest
        lines = list(request.lines.filter(decision="pending").order_by("pk"))
        for line, choice in zip(lines, choices + ["all"] * len(lines), strict=False):
            if choice == "deny" or line.engine_amount == 0:
                services.refund_line_decide(
                    actor=self.staff, line=line, approve=False, reason="not this one"
                )
            else:
                amount = line.engine_amount if choice == "all" else line.engine_amount / 2
                services.refund_line_decide(
                    actor=self.staff,
                    line=line,
                    approve=True,
                    amount=amount.quantize(Decimal("0.01")),
                )
        services.refund_request_decide(actor=self.staff, request=request)

    def _payout(self, index, **filters):
        payouts = list(
            RefundPayout.objects.filter(request__account=self.account, **filters).order_by("pk")
        )
        return payouts[-1 - index % len(payouts)] if payouts else None  # 0: the newest

    def _run(self, index, outcome):
        payout = self._payout(index, method="stripe")
        if payout is not None:
            FakeGateway.outcome = outcome
            services.refund_payout_run(payout_id=payout.pk)

    def _retry(self, index):
        payout = self._payout(index, status="failed")
        if payout is not None:
            services.refund_payout_retry(actor=self.staff, payout=payout)

    def _replay_success(self, index):
        """The gateway's success notification, once more (or first, for a pending one)."""
        payout = self._payout(index, method="stripe")
        if payout is not None and payout.idempotency_key in FakeGateway.given_back:
            services.refund_payout_succeeded(payout=payout, reference="re_replayed")

    def _stale_failure(self, index):
        """A failure of an earlier attempt, told late."""
        payout = self._payout(index, method="stripe")
        if payout is not None:
            services.refund_payout_failed(
                payout=payout, message="old news", idempotency_key="an-earlier-attempt"
            )

    def _another_way(self, index, method):
        """A card refund the gateway refused is paid by bank transfer or as credit."""
        payout = self._payout(index, method="stripe", status="failed")
        if payout is not None:
            services.refund_payout_pay_another_way(actor=self.staff, payout=payout, method=method)

    def _manual(self, index):
        payout = self._payout(index, method="manual", status="pending")
        if payout is not None:
            services.refund_payout_record_manual(
                actor=self.staff, payout=payout, reference=f"WIRE-{payout.pk}"
            )

    def _use(self, units):
        product = self.prices["credits"].product
        billing_services.credits_use(
            actor=self.owner,
            account=self.account,
            product=product,
            units=units,
            reference=f"use-{LineRefund.objects.count()}-{units}-{OrderLine.objects.count()}",
        )

    # --- the invariants ---------------------------------------------------------------

    def _credits_summed(self):
        rows = (
            OrderLine.objects.filter(
                order__account=self.account,
                order__status="paid",
                kind="credit_pack",
                units__isnull=False,
            )
            .values("product")
            .annotate(u=Sum("units"), used=Sum("units_used"), back=Sum("units_refunded"))
            .order_by("product")
        )
        return [(r["product"], r["u"], r["used"], r["back"]) for r in rows]

    def _check(self):
        # The stored credit-pack balance is the sum over the paid packs, whatever moved.
        stored = [
            (c.product.pk, c.units, c.used, c.refunded)
            for c in billing_selectors.credits_left(account=self.account)
        ]
        assert stored == self._credits_summed(), stored
        for line in OrderLine.objects.filter(order__account=self.account):
            records = LineRefund.objects.filter(line=line).aggregate(s=Sum("amount"))["s"] or 0
            assert line.refunded == records, (line, line.refunded, records)
            assert 0 <= line.refunded <= line.amount, (line, line.refunded)
            if line.units is not None:
                assert line.units_used + line.units_refunded <= line.units
        for payment in Payment.objects.filter(account=self.account):
            records = (
                LineRefund.objects.filter(payment=payment).aggregate(s=Sum("amount"))["s"] or 0
            )
            assert payment.refunded == records <= payment.amount, (payment, records)
            asked = sum(
                amount
                for charge, amount, _ in FakeGateway.given_back.values()
                if charge == payment.reference
            )
            assert asked <= payment.amount, (payment, asked)
        # What the gateway gave back is a payout's that is still a card refund, done or
        # in flight, and never more than that payout: none paid twice, none lost.
        for payout in RefundPayout.objects.filter(request__account=self.account):
            given = sum(
                amount for _, amount, pk in FakeGateway.given_back.values() if pk == payout.pk
            )
            if given:
                assert payout.method == "stripe" and payout.status in ("succeeded", "pending")
                assert given <= payout.amount, (payout, given)
        balance = Decimal(0)
        for entry in LedgerEntry.objects.filter(account=self.account).order_by("sequence"):
            balance += entry.amount
            assert entry.balance_after == balance >= 0
        paid_out = RefundPayout.objects.filter(
            request__account=self.account, status="succeeded"
        ).aggregate(s=Sum("amount"))["s"] or Decimal(0)
        refunded = Payment.objects.filter(account=self.account).aggregate(s=Sum("refunded"))[
            "s"
        ] or Decimal(0)
        credited = LedgerEntry.objects.filter(
            account=self.account, kind=LedgerEntry.Kind.REFUND_CREDIT
        ).aggregate(s=Sum("amount"))["s"] or Decimal(0)
        records = LineRefund.objects.filter(line__order__account=self.account).aggregate(
            s=Sum("amount")
        )["s"] or Decimal(0)
        assert refunded + credited == paid_out == records, (refunded, credited, paid_out, records)
        for request in RefundRequest.objects.filter(account=self.account):
            assert request.approved_total <= sum(
                (line.order_line.amount for line in request.lines.select_related("order_line")),
                Decimal(0),
            )
