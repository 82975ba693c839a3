"""A plan's life: start (a trial or the first period paid now), seats, plan changes,
cancellation at the period's end and renewal (1CRM terms, acelle §6).

Removed seats become an immediate, non-refundable credit; added seats and upgrades are
charged at once, pro rata; a downgrade waits for the next cycle. Until a renewal is
paid the plan has lapsed and the account is on the licence screen.
"""

import logging
from contextvars import ContextVar
from dataclasses import dataclass, replace
from datetime import timedelta
from decimal import Decimal

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts import selectors as account_selectors
from accounts import services as account_services
from accounts.errors import PortalError
from accounts.models import Account
from accounts.services import audit_batch, audit_record
from core import outbox
from core.bulk import together_or_none

from ..locks import lock_account, lock_subscription
from ..models import (
    BillingDetails,
    LedgerEntry,
    Order,
    OrderLine,
    Price,
    Product,
    Subscription,
    TaxRate,
)
from ..money import Money
from ..periods import next_period_end
from ..quotes import PlanChangeQuote, SeatChangeQuote, plan_change_quote, seat_change_quote
from ..selectors import (
    account_today,
    entitlements_lost,
    licensed_users,
    order_open_for,
    subscription_live,
    trial_available,
)
from ..tax import TaxTerms, tax_preview, tax_terms, tax_terms_from
from .common import require_billing_role, require_previewed
from .documents import credit_note_for_credit
from .ledger import ledger_post
from .orders import (
    OrderTotals,
    order_cancel_locked,
    order_place,
    order_totals,
    orders_create_many,
)
from .payments import payments_charge_on_commit
from .seats import seats_paid_sync
from .states import SUBSCRIPTION
from .subscription_state import subscription_end, subscription_open, subscription_set_quantity

logger = logging.getLogger(__name__)


def subscription_void_open_changes(
    subscription: Subscription, *, account: Account, reason: str
) -> None:
    """Unpaid seat or plan changes were priced for the period that is ending: void them."""
    # Ids first: PostgreSQL does not lock rows of a DISTINCT query.
    ids = set(
        Order.objects.filter(
            status=Order.Status.AWAITING_PAYMENT,
            lines__subscription=subscription,
            lines__effect__in=[OrderLine.Effect.ADD_SEATS, OrderLine.Effect.CHANGE_PLAN],
        ).values_list("pk", flat=True)
    )
    orders = Order.objects.select_for_update(no_key=True).filter(pk__in=ids).order_by("pk")
    for order in orders:
        order_cancel_locked(order, account=account, actor=None, reason=reason)


def _require_plan(subscription: Subscription, *, field: str) -> None:
    """Seats and plan changes are the plan's; support follows the licences (1CRM terms)."""
    if subscription.price.product.kind != Product.Kind.SUBSCRIPTION:
        raise PortalError(
            f"{subscription.price.product.name} is not the account's plan: its seats and "
            "price do not change here.",
            field=field,
        )


def _require_no_open_order(subscription: Subscription, *, field: str) -> None:
    """One change at a time: an unpaid order for the plan is paid or cancelled first."""
    open_order = order_open_for(subscription)
    if open_order is not None:
        raise PortalError(
            f"Order {open_order.number} awaits payment; pay or cancel it before another change.",
            field=field,
        )


def subscription_seat_quote(
    *, subscription: Subscription, quantity, today, now=None
) -> SeatChangeQuote:
    """What a seat change would cost or credit, refusing every change the rules refuse."""
    account = subscription.account
    _require_plan(subscription, field="quantity")
    if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 1:
        raise PortalError("Give a whole number of seats, at least 1.", field="quantity")
    if account.reseller_id:
        raise PortalError(
            f"{account.name}'s billing is provided by {account.reseller.name}: ask them to "
            "change your seats.",
            field="quantity",
        )
    if subscription.price.scheme != Price.Scheme.PER_SEAT:
        raise PortalError("This plan is not priced per seat.", field="quantity")
    if subscription.status not in (Subscription.Status.ACTIVE, Subscription.Status.TRIALING):
        raise PortalError(
            f"The subscription is {subscription.get_status_display().lower()}; renew it first.",
            field="quantity",
        )
    if today >= subscription.current_period_end:
        raise PortalError(
            f"The period ended on {subscription.current_period_end:%d %B %Y}; renew the "
            "subscription before changing its seats.",
            field="quantity",
        )
    _require_no_open_order(subscription, field="quantity")
    if quantity < subscription.quantity:
        usage = account_selectors.seat_usage(account=account, now=now or timezone.now())
        if usage.used > quantity:
            raise PortalError(
                f"{usage.describe()}: take seats from members or withdraw invitations "
                f"before going down to {quantity}.",
                field="quantity",
            )
    quote = seat_change_quote(
        unit_price=Money(subscription.price.amount, subscription.price.currency),
        current=subscription.quantity,
        new=quantity,
        period_start=subscription.current_period_start,
        period_end=subscription.current_period_end,
        today=today,
    )
    if subscription.status == Subscription.Status.TRIALING:
        # Nothing was paid for a trial: its seats change without a charge or a credit.
        quote = replace(quote, amount=Money.zero(quote.amount.currency), trial=True)
    return with_quote_tax(quote, subscription.account, today)


def with_quote_tax(quote, account: Account, today):
    """The quote with the tax its amount is charged (or was paid) with (billing.tax)."""
    tax, _, name = tax_preview(account, quote.amount, today)
    return replace(quote, tax=tax, tax_name=name) if name else quote


def _seat_line(subscription: Subscription, quote: SeatChangeQuote) -> dict:
    return {
        "product": subscription.price.product,
        "price": subscription.price,
        "subscription": subscription,
        "kind": Product.Kind.SUBSCRIPTION,
        "description": (
            f"{quote.delta} more seat(s) of {subscription.price.product.name}, "
            f"{quote.period_start:%d %b} to {quote.period_end:%d %b %Y}"
        ),
        "quantity": quote.delta,
        "amount": quote.amount.amount,
        "period_start": quote.period_start,
        "period_end": quote.period_end,
        "first_purchase": False,
        "effect": OrderLine.Effect.ADD_SEATS,
    }


def subscription_seat_preview(
    *, subscription: Subscription, quantity, today, now=None
) -> tuple[SeatChangeQuote, OrderTotals | None]:
    """The quote, and the order it places (credit and tax included) when it charges."""
    quote = subscription_seat_quote(
        subscription=subscription, quantity=quantity, today=today, now=now
    )
    if quote.kind != "charge" or quote.amount.amount == 0:
        return quote, None
    return quote, order_totals(
        account=subscription.account, lines=[_seat_line(subscription, quote)], today=today
    )


def subscription_change_seats(
    *,
    actor,
    subscription: Subscription,
    quantity: int,
    expected_amount: Money | None = None,
    now=None,
) -> tuple[Subscription, SeatChangeQuote, Order | None]:
    """Add seats (charged at once, pro rata) or remove them (credited, pro rata). 1CRM terms.

    `expected_amount` is what the customer saw in the preview: if the quote moved
    since (a new day began), nothing changes and they are shown the new one.
    """
    now = now or timezone.now()
    with transaction.atomic():
        account = lock_account(subscription.account)
        require_billing_role(actor=actor, account=account)
        subscription = lock_subscription(subscription)
        today = account_today(account, now)
        quote = subscription_seat_quote(
            subscription=subscription, quantity=quantity, today=today, now=now
        )
        require_previewed(quote.amount, expected_amount, field="quantity")
        order = None
        if quote.kind == "none":
            return subscription, quote, None
        if quote.kind == "credit" or quote.amount.amount == 0:
            subscription_set_quantity(subscription, quantity, actor=actor, reason=quote.kind)
            if quote.kind == "credit" and quote.amount.amount > 0:
                # The credit gives back the tax paid on those seats too.
                entry = ledger_post(
                    account=account,
                    currency=quote.amount.currency,
                    amount=quote.total.amount,
                    kind=LedgerEntry.Kind.SEAT_CREDIT,
                    description=f"{-quote.delta} seat(s) removed on {today:%d %B %Y}",
                    reference=f"subscription:{subscription.pk}",
                    actor=actor,
                )
                paid = (
                    OrderLine.objects.filter(
                        subscription=subscription,
                        order__status=Order.Status.PAID,
                        effect__in=[OrderLine.Effect.START, OrderLine.Effect.RENEW],
                    )
                    .select_related("order__account")
                    .order_by("-order__paid_at", "-pk")
                    .first()
                )
                if paid is not None:  # the credit corrects the period's invoice
                    credit_note_for_credit(
                        order=paid.order,
                        line=paid,
                        amount=quote.total.amount,
                        reason=f"{-quote.delta} seat(s) removed on {today:%d %B %Y}",
                        key=f"ledger:{entry.pk}",
                        now=now,
                    )
            seats_paid_sync(account, actor=actor)
        else:
            order = order_place(
                account=account,
                line=_seat_line(subscription, quote),
                actor=actor,
                now=now,
                changes={"seats": [quote.current, quantity], "total": str(quote.amount)},
            )
    subscription.refresh_from_db()
    return subscription, quote, order


def subscription_set_cancel_at_period_end(
    *, actor, subscription: Subscription, cancel: bool
) -> Subscription:
    """Cancel (access to the end of the paid period, no renewal, no refund of unused
    time: 1CRM terms, acelle §6), or take the cancellation back before the period ends."""
    with transaction.atomic():
        account = lock_account(subscription.account)
        require_billing_role(actor=actor, account=account)
        subscription = lock_subscription(subscription)
        if subscription.status not in (Subscription.Status.ACTIVE, Subscription.Status.TRIALING):
            raise PortalError(
                f"The subscription is {subscription.get_status_display().lower()}.",
                field="cancel_at_period_end",
            )
        if account.reseller_id:
            raise PortalError(
                f"{account.name}'s billing is provided by {account.reseller.name}.",
                field="cancel_at_period_end",
            )
        if subscription.cancel_at_period_end == cancel:
            return subscription
        subscription.cancel_at_period_end = cancel
        subscription.save(update_fields=["cancel_at_period_end"])
        audit_record(
            actor=actor,
            action="subscription.cancelled" if cancel else "subscription.cancellation_withdrawn",
            target=subscription,
            account=account,
            changes={"cancel_at_period_end": [not cancel, cancel]},
        )
    return subscription


def subscription_renew(*, subscription: Subscription, now=None) -> Subscription:
    """At the end of a period: end a cancelled plan, or order and charge the next period.

    Until the renewal is paid the plan is lapsed and the account on the licence screen
    (1CRM terms). Safe to run twice: a lapsed plan waits for its renewal order. Inside
    subscriptions_renew_chunk it uses what the chunk read once for all its renewals.
    """
    now = now or timezone.now()
    prefetched = _CHUNK.get()
    with transaction.atomic(), audit_batch():
        account = lock_account(subscription.account_id)
        subscription = _renewal_rows().get(pk=subscription.pk)
        subscription.account = account
        today = account_today(account, now)
        if not _is_due(subscription, today):
            return subscription
        if subscription.open_changes:
            subscription_void_open_changes(
                subscription, account=account, reason="voided at period end"
            )
            subscription.credit = None  # voiding gave credit back: read it again
        kind = subscription.price.product.kind
        is_plan = kind == Product.Kind.SUBSCRIPTION
        if kind == Product.Kind.SUPPORT_CONTRACT and not subscription.cancel_at_period_end:
            # Support is optional after the first year (1CRM terms): it expires unless the
            # customer renews; a late renewal runs from this date (billing.licences).
            SUBSCRIPTION.move(
                subscription,
                Subscription.Status.LAPSED,
                actor=None,
                action="support.expired",
                account=account,
                changes={"expired_on": str(subscription.current_period_end)},
            )
            return subscription
        if subscription.cancel_at_period_end:
            subscription_end(
                subscription, actor=None, changes={"reason": "cancelled at the end of its period"}
            )
            if is_plan:
                account_services.account_set_licence_screen(
                    account=account, on=True, reason="subscription ended"
                )
            return subscription
        line, changes = _renewal_line(subscription, kind)
        order = order_place(
            account=account,
            line=line,
            actor=None,
            now=now,
            changes=changes,
            terms=prefetched.terms_for(account, today) if prefetched else None,
            balance=(
                Money(subscription.credit, subscription.price.currency)
                if subscription.credit is not None
                else None
            ),
        )
        if order.status == Order.Status.PAID:
            # Delivery renewed the period on a row of its own: this one is stale.
            subscription.refresh_from_db()
            return subscription
        SUBSCRIPTION.move(
            subscription,
            Subscription.Status.LAPSED,
            actor=None,
            action="subscription.lapsed",
            account=account,
            changes={"awaiting": order.number},
        )
        if is_plan and account.status == Account.Status.ACTIVE:
            # `account` is this transaction's locked row: nothing since changed its status.
            account_services.account_set_licence_screen(
                account=account,
                on=True,
                reason=_awaits(order),
                locked=True,
            )
    return subscription


def _is_due(subscription: Subscription, today) -> bool:
    return today >= subscription.current_period_end and subscription.status not in (
        Subscription.Status.CANCELLED,
        Subscription.Status.LAPSED,
    )


def _awaits(order: Order) -> str:
    return f"renewal {order.number} awaits payment"


def _renewal_line(subscription: Subscription, kind: str) -> tuple[dict, dict]:
    """The renewal order's one line, for the next period at the plan's price (the one it
    moves to, if a downgrade waits), and the changes its audit row records."""
    price = subscription.pending_price or subscription.price
    start = subscription.current_period_end
    end = next_period_end(start, price.interval)
    seats = subscription.quantity if price.scheme == Price.Scheme.PER_SEAT else 1
    amount = Money(price.amount * seats, price.currency).rounded()
    line = {
        "product": price.product,
        "price": price,
        "subscription": subscription,
        "kind": kind,
        "description": f"{price.product.name}, {seats} seat(s), {start:%d %b %Y} to {end:%d %b %Y}",
        "quantity": seats,
        "amount": amount.amount,
        "period_start": start,
        "period_end": end,
        "first_purchase": subscription.status == Subscription.Status.TRIALING,
        "effect": OrderLine.Effect.RENEW,
    }
    return line, {"renewal": [str(start), str(end)], "total": str(amount)}


def _renewal_rows():
    """Subscriptions locked (billing.locks order: their accounts are locked already),
    with what renewing them reads in the same query: whether a seat or plan change awaits
    payment (`open_changes`) and the account's credit balance in the plan's currency
    (`credit`, 0 without a ledger entry). Both are read after the account's lock was
    taken, and both change only under it, so they are current. The caller sets each
    one's `account` to the row it locked."""
    credit = LedgerEntry.objects.filter(
        account=OuterRef("account_id"), currency=OuterRef("price__currency")
    ).order_by("-sequence")
    return (
        Subscription.objects.select_for_update(of=("self",), no_key=True)
        .select_related("price__product")
        .annotate(
            # From the plan's own lines (indexed), not from every unpaid order.
            open_changes=Exists(
                OrderLine.objects.filter(
                    subscription=OuterRef("pk"),
                    effect__in=[OrderLine.Effect.ADD_SEATS, OrderLine.Effect.CHANGE_PLAN],
                    order__status=Order.Status.AWAITING_PAYMENT,
                )
            ),
            credit=Coalesce(
                Subquery(credit.values("balance_after")[:1]),
                Value(Decimal(0)),
                output_field=LedgerEntry._meta.get_field("balance_after"),
            ),
        )
    )


@dataclass
class _ChunkReads:
    """What a chunk of renewals reads once instead of once per renewal: its accounts'
    billing details and the tax rates of their countries (billing.tax)."""

    accounts: set[int]
    details: dict[int, BillingDetails]
    rates: list[TaxRate]

    @classmethod
    def load(cls, subscriptions: list[Subscription]) -> "_ChunkReads":
        accounts = {subscription.account_id for subscription in subscriptions}
        details = {
            row.account_id: row
            for row in BillingDetails.objects.filter(account_id__in=accounts).only(
                "account_id", "country", "region", "tax_id"
            )
        }
        countries = {row.country for row in details.values() if row.country}
        rates = list(TaxRate.objects.filter(country__in=countries)) if countries else []
        return cls(accounts=accounts, details=details, rates=rates)

    def terms_for(self, account: Account, on) -> TaxTerms:
        if account.pk not in self.accounts:
            return tax_terms(account, on)
        return tax_terms_from(self.details.get(account.pk), self.rates, on)


_CHUNK: ContextVar[_ChunkReads | None] = ContextVar("renewal_chunk", default=None)


def _due_subscriptions(now):
    # A day of margin: accounts in zones ahead of UTC reach the date first; each renewal
    # checks its account's own date.
    return Subscription.objects.filter(
        status__in=[Subscription.Status.ACTIVE, Subscription.Status.TRIALING],
        current_period_end__lte=now.date() + timedelta(days=1),
    )


def subscriptions_due_batches(*, now, size: int):
    """The due subscriptions' ids, `size` at a time in id order (keyset: each batch starts
    after the last id of the one before, so none is read twice and no OFFSET is scanned)."""
    after = 0
    while True:
        batch = list(
            _due_subscriptions(now)
            .filter(pk__gt=after)
            .order_by("pk")
            .values_list("pk", flat=True)[:size]
        )
        if not batch:
            return
        yield batch
        after = batch[-1]


def subscriptions_renew_chunk(*, ids: list[int], now=None) -> int:
    """Renew the due subscriptions among `ids`; returns how many changed since the chunk
    read them. Safe to run twice and beside another chunk: renewing locks the accounts
    and subscriptions and checks again that each is due, so one renewed already (or by
    another worker) is left alone.

    The common case, a plan left awaiting the payment of its renewal, is renewed for the
    whole chunk in one transaction (_renew_together); the others (cancelled at the period
    end, credit to apply, a change awaiting payment, support), and all of them if that
    transaction fails, are renewed one by one, each in its own transaction. One
    subscription's failure there must not hold back the others: it is logged and the next
    run retries it. A soft time limit is not a failure of one subscription: it ends the
    chunk, and the next dispatch queues what is left.
    """
    now = now or timezone.now()
    subscriptions = list(
        Subscription.objects.filter(
            pk__in=ids, status__in=[Subscription.Status.ACTIVE, Subscription.Status.TRIALING]
        ).order_by("pk")
    )
    if not subscriptions:
        return 0
    reads = _ChunkReads.load(subscriptions)
    token = _CHUNK.set(reads)
    changed = 0
    # Each renewal's payment job is published as its renewal commits; their "sent" marks
    # are written together (core.outbox.sent_marks_batch).
    try:
        with outbox.sent_marks_batch():
            changed, left = together_or_none(
                lambda: _renew_together(subscriptions, now=now, reads=reads),
                what="Renewals of subscriptions",
                first=subscriptions[0].pk,
                last=subscriptions[-1].pk,
            ) or (0, subscriptions)
            for before in left:
                try:
                    after = subscription_renew(subscription=before, now=now)
                except SoftTimeLimitExceeded:
                    raise
                except Exception:
                    logger.exception("Renewal of subscription %s failed", before.pk)
                    continue
                changed += (after.current_period_end, after.status) != (
                    before.current_period_end,
                    before.status,
                )
    finally:
        _CHUNK.reset(token)
    return changed


def _renew_together(
    subscriptions: list[Subscription], *, now, reads: "_ChunkReads"
) -> tuple[int, list[Subscription]]:
    """What subscription_renew does for a plan whose renewal is left awaiting payment, for
    a whole chunk in one transaction and a fixed number of statements: the accounts and
    subscriptions locked (accounts first, each set in id order, so two chunks agree), the
    orders and their lines, the payments and their jobs, the plans lapsed and the accounts
    put on the licence screen, each change audited as one renewal audits it. Returns how
    many it renewed, and the due subscriptions it leaves to subscription_renew."""
    with transaction.atomic(), audit_batch():
        accounts = {
            account.pk: account
            for account in Account.objects.select_for_update(no_key=True)
            .filter(pk__in=reads.accounts)
            .order_by("pk")
        }
        common, left = [], []
        for subscription in (
            _renewal_rows().filter(pk__in=[s.pk for s in subscriptions]).order_by("pk")
        ):
            account = accounts[subscription.account_id]
            subscription.account = account
            today = account_today(account, now)
            if not _is_due(subscription, today):
                continue
            kind = subscription.price.product.kind
            if (
                subscription.open_changes
                or subscription.cancel_at_period_end
                or kind == Product.Kind.SUPPORT_CONTRACT
            ):
                left.append(subscription)
                continue
            line, changes = _renewal_line(subscription, kind)
            totals = order_totals(
                account=account,
                lines=[line],
                today=today,
                terms=reads.terms_for(account, today),
                balance=Money(subscription.credit, subscription.price.currency),
            )
            if totals.credit.amount > 0 or totals.total.amount <= 0:
                left.append(subscription)  # credit pays first, and may pay it all
                continue
            common.append((subscription, kind, totals, changes))
        if not common:
            return 0, left
        orders = orders_create_many(
            orders=[(s.account, totals.currency, totals.lines) for s, _, totals, _ in common],
            actor=None,
            now=now,
        )
        for order, (subscription, _, _, changes) in zip(orders, common, strict=True):
            audit_record(
                actor=None,
                action="order.created",
                target=order,
                account=subscription.account,
                changes=changes,
            )
        payments_charge_on_commit(orders)
        awaiting = {s.pk: order for order, (s, _, _, _) in zip(orders, common, strict=True)}
        SUBSCRIPTION.move_many(
            [subscription for subscription, _, _, _ in common],
            Subscription.Status.LAPSED,
            actor=None,
            action="subscription.lapsed",
            account_of=lambda subscription: subscription.account,
            changes_of=lambda subscription: {"awaiting": awaiting[subscription.pk].number},
        )
        account_services.accounts_set_licence_screen_locked(
            accounts=[
                (subscription.account, _awaits(awaiting[subscription.pk]))
                for subscription, kind, _, _ in common
                if kind == Product.Kind.SUBSCRIPTION
            ]
        )
    return len(common), left


def subscriptions_renew_due(*, now=None, chunk_size: int | None = None) -> int:
    """Every due subscription renewed in this process, chunk by chunk (the demo, tests, a
    shell); returns how many changed. The beat job queues the chunks to the workers
    instead (subscriptions_renew_dispatch)."""
    now = now or timezone.now()
    size = chunk_size or settings.RENEWAL_CHUNK_SIZE
    return sum(
        subscriptions_renew_chunk(ids=ids, now=now)
        for ids in subscriptions_due_batches(now=now, size=size)
    )


def subscriptions_renew_dispatch(*, now=None, chunk_size: int | None = None) -> int:
    """The beat job's work: queue a renewal job per chunk of due subscriptions (their ids
    only, read in batches), for the workers to run side by side. Returns how many
    subscriptions were queued. A subscription queued twice (a run before its chunk ran,
    a job handed out again) is renewed once: the chunk checks each again under its lock.

    Straight to the broker, not through the outbox: the dispatch changes nothing in the
    database for a job to be atomic with, and it runs only when the broker has just
    handed it out. If the broker fails midway, the next hourly run queues what is still
    due. (The outbox would open a broker connection per job: 500 at 100,000 due.)"""
    from .. import tasks  # billing.tasks imports the services

    now = now or timezone.now()
    size = chunk_size or settings.RENEWAL_CHUNK_SIZE
    queued = 0
    for ids in subscriptions_due_batches(now=now, size=size):
        tasks.subscriptions_renew_chunk.apply_async((ids,))
        queued += len(ids)
    return queued


def _plan_total(price: Price, quantity: int) -> Money:
    seats = quantity if price.scheme == Price.Scheme.PER_SEAT else 1
    return Money(price.amount * seats, price.currency)


def subscription_plan_quote(
    *, subscription: Subscription, price: Price, today, now=None
) -> PlanChangeQuote:
    account = subscription.account
    _require_plan(subscription, field="price")
    if account.reseller_id:
        raise PortalError(
            f"{account.name}'s billing is provided by {account.reseller.name}: ask them to "
            "change your plan.",
            field="price",
        )
    if subscription.status != Subscription.Status.ACTIVE:
        raise PortalError(
            f"The subscription is {subscription.get_status_display().lower()}; plans change "
            "on an active subscription.",
            field="price",
        )
    if (
        not price.is_active
        or price.product.kind != Product.Kind.SUBSCRIPTION
        or price.currency != subscription.price.currency
        or price.interval != subscription.price.interval
        or price.scheme != subscription.price.scheme
    ):
        raise PortalError(
            "Choose a plan billed in the same currency and at the same interval.", field="price"
        )
    if today >= subscription.current_period_end:
        raise PortalError("The period has ended; renew the subscription first.", field="price")
    _require_no_open_order(subscription, field="price")
    quote = plan_change_quote(
        current_name=subscription.price.product.name,
        new_name=price.product.name,
        current_total=_plan_total(subscription.price, subscription.quantity),
        new_total=_plan_total(price, subscription.quantity),
        period_start=subscription.current_period_start,
        period_end=subscription.current_period_end,
        today=today,
        same_plan=price.pk == subscription.price_id,
        downgrade_pending=subscription.pending_price_id is not None,
    )
    if price.product.edition != subscription.price.product.edition:
        stops = entitlements_lost(subscription.account, edition=price.product.edition)
        quote = replace(quote, stops=tuple(stops))
    return with_quote_tax(quote, subscription.account, today)


def _upgrade_line(subscription: Subscription, price: Price, quote: PlanChangeQuote) -> dict:
    return {
        "product": price.product,
        "price": price,
        "subscription": subscription,
        "kind": Product.Kind.SUBSCRIPTION,
        "description": (
            f"Upgrade to {price.product.name}, {quote.period_start:%d %b} to "
            f"{quote.period_end:%d %b %Y}"
        ),
        "quantity": subscription.quantity,
        "amount": quote.amount.amount,
        "period_start": quote.period_start,
        "period_end": quote.period_end,
        "first_purchase": False,
        "effect": OrderLine.Effect.CHANGE_PLAN,
    }


def subscription_plan_preview(
    *, subscription: Subscription, price: Price, today, now=None
) -> tuple[PlanChangeQuote, OrderTotals | None]:
    """The quote, and the order an upgrade places (credit and tax included)."""
    quote = subscription_plan_quote(subscription=subscription, price=price, today=today, now=now)
    if quote.kind != "upgrade":
        return quote, None
    return quote, order_totals(
        account=subscription.account, lines=[_upgrade_line(subscription, price, quote)], today=today
    )


def subscription_change_plan(
    *,
    actor,
    subscription: Subscription,
    price: Price,
    expected_amount: Money | None = None,
    now=None,
) -> tuple[Subscription, PlanChangeQuote, Order | None]:
    """Upgrade now (difference pro rata, charged at once) or downgrade at the next cycle."""
    now = now or timezone.now()
    with transaction.atomic():
        account = lock_account(subscription.account)
        require_billing_role(actor=actor, account=account)
        subscription = lock_subscription(subscription)
        price = Price.objects.select_related("product").get(pk=price.pk)
        quote = subscription_plan_quote(
            subscription=subscription, price=price, today=account_today(account, now), now=now
        )
        require_previewed(quote.amount, expected_amount, field="price")
        order = None
        if quote.kind == "none":
            return subscription, quote, None
        if quote.kind == "stay":
            withdrawn = subscription.pending_price
            subscription.pending_price = None
            subscription.save(update_fields=["pending_price"])
            audit_record(
                actor=actor,
                action="subscription.downgrade_withdrawn",
                target=subscription,
                account=account,
                changes={"pending_price": [str(withdrawn), None]},
            )
            return subscription, quote, None
        if quote.kind == "downgrade":
            subscription.pending_price = price
            subscription.save(update_fields=["pending_price"])
            audit_record(
                actor=actor,
                action="subscription.downgrade_scheduled",
                target=subscription,
                account=account,
                changes={
                    "price": [str(subscription.price), str(price)],
                    "from": str(subscription.current_period_end),
                },
            )
        else:
            order = order_place(
                account=account,
                line=_upgrade_line(subscription, price, quote),
                actor=actor,
                now=now,
                changes={
                    "upgrade": [str(subscription.price), str(price)],
                    "total": str(quote.amount),
                },
            )
    subscription.refresh_from_db()
    return subscription, quote, order


def subscription_start(
    *, actor, account: Account, price: Price, quantity: int, trial: bool = False, now=None
) -> tuple[Subscription, Order | None]:
    """Start a plan: a free trial (first plan only), or the first period paid now.

    Access begins the moment the first payment succeeds (delivery policy §1-2).
    """
    now = now or timezone.now()
    if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 1:
        raise PortalError("Give a whole number of seats, at least 1.", field="quantity")
    with transaction.atomic():
        account = lock_account(account)
        require_billing_role(actor=actor, account=account)
        if account.reseller_id:
            raise PortalError(
                f"{account.name}'s billing is provided by {account.reseller.name}.", field="price"
            )
        if licensed_users(account) is not None:
            raise PortalError(
                f"{account.name} is licensed on-premise; a cloud plan needs a separate account.",
                field="price",
            )
        live = subscription_live(account)
        if live is not None:
            raise PortalError(
                f"{account.name} already has a plan ({live.get_status_display().lower()}); "
                "change it instead.",
                field="price",
            )
        price = Price.objects.select_related("product").get(pk=price.pk)
        if (
            not price.is_active
            or price.product.kind != Product.Kind.SUBSCRIPTION
            or price.interval not in (Price.Interval.MONTH, Price.Interval.YEAR)
            or price.currency != account.currency
        ):
            raise PortalError(
                f"Choose a monthly or yearly plan billed in {account.currency}.", field="price"
            )
        seats = quantity if price.scheme == Price.Scheme.PER_SEAT else 1
        usage = account_selectors.seat_usage(account=account, now=now)
        if price.scheme == Price.Scheme.PER_SEAT and usage.used > seats:
            raise PortalError(
                f"{usage.describe()}: start with at least {usage.used} seats.", field="quantity"
            )
        if trial and not trial_available(account):
            raise PortalError("The free trial is for an account's first plan.", field="trial")
        today = account_today(account, now)
        if trial:
            end = today + timedelta(days=settings.BILLING_TRIAL_DAYS)
            subscription = subscription_open(
                account=account,
                price=price,
                seats=seats,
                start=today,
                end=end,
                trial=True,
                actor=actor,
            )
            seats_paid_sync(account, actor=actor)
            return subscription, None
        end = next_period_end(today, price.interval)
        amount = Money(price.amount * seats, price.currency).rounded()
        subscription = subscription_open(
            account=account,
            price=price,
            seats=seats,
            start=today,
            end=end,
            trial=False,
            actor=actor,
        )
        order = order_place(
            account=account,
            line={
                "product": price.product,
                "price": price,
                "subscription": subscription,
                "kind": Product.Kind.SUBSCRIPTION,
                "description": (
                    f"{price.product.name}, {seats} seat(s), {today:%d %b %Y} to {end:%d %b %Y}"
                ),
                "quantity": seats,
                "amount": amount.amount,
                "period_start": today,
                "period_end": end,
                "first_purchase": True,
                "effect": OrderLine.Effect.START,
            },
            actor=actor,
            now=now,
            changes={"start": str(price), "total": str(amount)},
        )
        audit_record(
            actor=actor,
            action="subscription.started",
            target=subscription,
            account=account,
            changes={"price": str(price), "order": order.number, "total": str(amount)},
        )
    subscription.refresh_from_db()
    return subscription, order
