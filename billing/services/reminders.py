"""Reminder mails, each once (a unique MailReminder key claimed in the transaction that
queues the mail): a trial ending (3 days before and on its last day), a yearly renewal
coming (30 days before), on-premise support expiring (90, 30 and 7 days before: 1CRM
terms, support does not renew by itself), the card on file expiring next month."""

from datetime import date, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Account
from core import outbox

from .. import tasks
from ..models import MailReminder, Price, Product, Subscription
from ..selectors import account_today

SUPPORT_DAYS = (90, 30, 7)
RENEWAL_DAYS = 30
TRIAL_DAYS = 3


def reminder_claim(*, account: Account, kind: str, key: str, **data) -> bool:
    """Claim a reminder and queue its mail after commit; False if it was sent before."""
    try:
        with transaction.atomic():
            MailReminder.objects.create(account=account, kind=kind, key=key)
            outbox.enqueue(tasks.send_reminder_email, account.pk, kind, data)
    except IntegrityError:
        return False
    return True


def _due(today: date, end: date, days) -> int | None:
    """The reminder (days before `end`) due today, if one is: the smallest that passed."""
    left = (end - today).days
    passed = [n for n in days if left <= n]
    return min(passed) if passed and left >= 0 else None


def reminders_send_due(*, now=None) -> int:
    now = now or timezone.now()
    horizon = now.date() + timedelta(days=max(SUPPORT_DAYS) + 1)
    sent = 0
    live = Subscription.objects.filter(
        status__in=[Subscription.Status.ACTIVE, Subscription.Status.TRIALING],
        current_period_end__lte=horizon,
        cancel_at_period_end=False,
    ).select_related("account", "price__product")
    for sub in live:
        today = account_today(sub.account, now)
        product = sub.price.product
        if product.kind in Product.APP_KINDS:
            continue  # the marketplace mails its own trials
        if sub.status == Subscription.Status.TRIALING and sub.trial_end:
            last = sub.trial_end - timedelta(days=1)
            before = _due(today, last, (TRIAL_DAYS, 0))
            if before is not None:
                sent += reminder_claim(
                    account=sub.account,
                    kind="trial_ending",
                    key=f"trial:{sub.pk}:{before}",
                    product=product.name,
                    last_day=last.isoformat(),
                )
        elif product.kind == Product.Kind.SUPPORT_CONTRACT:
            before = _due(today, sub.current_period_end, SUPPORT_DAYS)
            if before is not None:
                sent += reminder_claim(
                    account=sub.account,
                    kind="support_expiring",
                    key=f"support:{sub.pk}:{sub.current_period_end}:{before}",
                    product=product.name,
                    last_day=sub.last_day.isoformat(),
                )
        elif sub.price.interval == Price.Interval.YEAR:
            before = _due(today, sub.current_period_end, (RENEWAL_DAYS,))
            if before is not None:
                sent += reminder_claim(
                    account=sub.account,
                    kind="renewal_coming",
                    key=f"renewal:{sub.pk}:{sub.current_period_end}",
                    product=product.name,
                    renews_on=sub.current_period_end.isoformat(),
                )
    sent += _cards_expiring(now)
    return sent


def _cards_expiring(now) -> int:
    """The card on file expires at the end of next month: remind once a month ahead."""
    from djstripe.models import Customer

    from ..payment_methods import card_on_file

    sent = 0
    ids = (
        Customer.objects.filter(subscriber__isnull=False, date_purged__isnull=True)
        .values_list("subscriber_id", flat=True)
        .distinct()
    )
    for account in Account.objects.filter(pk__in=list(ids)):
        card = card_on_file(account=account)
        today = account_today(account, now)
        nxt = (today.replace(day=1) + timedelta(days=32)).replace(day=1)
        if card is None or (card.exp_year, card.exp_month) != (nxt.year, nxt.month):
            continue
        sent += reminder_claim(
            account=account,
            kind="card_expiring",
            key=f"card:{account.pk}:{card.last4}:{card.exp_year}-{card.exp_month:02d}",
            card=str(card),
            month=f"{nxt:%B %Y}",
        )
    return sent
