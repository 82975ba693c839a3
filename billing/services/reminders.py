"""Reminder mails, each once (a unique MailReminder key claimed in the transaction that
queues the mail): a trial ending (3 days before and on its last day), a yearly renewal
coming (30 days before), on-premise support expiring (90, 30 and 7 days before: 1CRM
terms, support does not renew by itself), the card on file expiring next month."""

from datetime import date, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import OuterRef, Q, Subquery
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


def _claims_new(claims: list[dict]) -> int:
    """Claim the reminders whose key was not claimed before: one query finds those sent,
    so a run over reminders already sent writes nothing."""
    sent_before = set(
        MailReminder.objects.filter(key__in=[claim["key"] for claim in claims]).values_list(
            "key", flat=True
        )
    )
    return sum(reminder_claim(**claim) for claim in claims if claim["key"] not in sent_before)


def _subscription_reminder(sub: Subscription, today: date) -> dict | None:
    """The reminder due today on a subscription (its kind, key and data), if one is."""
    if sub.status == Subscription.Status.TRIALING and sub.trial_end:
        last = sub.trial_end - timedelta(days=1)
        before = _due(today, last, (TRIAL_DAYS, 0))
        if before is not None:
            return {
                "kind": "trial_ending",
                "key": f"trial:{sub.pk}:{before}",
                "last_day": last.isoformat(),
            }
    elif sub.price.product.kind == Product.Kind.SUPPORT_CONTRACT:
        before = _due(today, sub.current_period_end, SUPPORT_DAYS)
        if before is not None:
            return {
                "kind": "support_expiring",
                "key": f"support:{sub.pk}:{sub.current_period_end}:{before}",
                "last_day": sub.last_day.isoformat(),
            }
    elif (
        sub.price.interval == Price.Interval.YEAR
        and _due(today, sub.current_period_end, (RENEWAL_DAYS,)) is not None
    ):
        return {
            "kind": "renewal_coming",
            "key": f"renewal:{sub.pk}:{sub.current_period_end}",
            "renews_on": sub.current_period_end.isoformat(),
        }
    return None


def reminders_send_due(*, now=None) -> int:
    now = now or timezone.now()
    horizon = now.date() + timedelta(days=max(SUPPORT_DAYS) + 1)
    # Local dates are at most a day either side of UTC's: only subscriptions whose date
    # falls in a reminder's window are read (subscription_live_period_end).
    earliest, latest = now.date() - timedelta(days=1), now.date() + timedelta(days=1)
    in_trial = Q(status=Subscription.Status.TRIALING, trial_end__isnull=False)
    live = (
        Subscription.objects.filter(
            status__in=[Subscription.Status.ACTIVE, Subscription.Status.TRIALING],
            current_period_end__lte=horizon,
            cancel_at_period_end=False,
        )
        .filter(
            (
                in_trial
                & Q(
                    trial_end__range=(
                        earliest + timedelta(days=1),
                        latest + timedelta(days=TRIAL_DAYS + 1),
                    )
                )
            )
            | (
                ~in_trial
                & Q(
                    price__product__kind=Product.Kind.SUPPORT_CONTRACT,
                    current_period_end__range=(
                        earliest,
                        latest + timedelta(days=max(SUPPORT_DAYS)),
                    ),
                )
            )
            | (
                ~in_trial
                & ~Q(price__product__kind=Product.Kind.SUPPORT_CONTRACT)
                & Q(
                    price__interval=Price.Interval.YEAR,
                    current_period_end__range=(earliest, latest + timedelta(days=RENEWAL_DAYS)),
                )
            )
        )
        .exclude(price__product__kind__in=Product.APP_KINDS)  # the marketplace mails its own
        .select_related("account", "price__product")
    )
    claims = []
    for sub in live:
        claim = _subscription_reminder(sub, account_today(sub.account, now))
        if claim is not None:
            claims.append(dict(account=sub.account, product=sub.price.product.name, **claim))
    return _claims_new(claims) + _cards_expiring(now)


def _cards_expiring(now) -> int:
    """The card on file expires at the end of next month: remind once a month ahead. Only
    default cards that expire in one of the months that can be "next month" somewhere
    today are read."""
    from djstripe.models import Customer

    from ..payment_methods import card_of

    months = set()
    for day in (now.date() - timedelta(days=1), now.date() + timedelta(days=1)):
        nxt = (day.replace(day=1) + timedelta(days=32)).replace(day=1)
        months.add((nxt.year, nxt.month))
    expiring = Q()
    for year, month in months:
        expiring |= Q(
            default_payment_method__stripe_data__card__exp_year=year,
            default_payment_method__stripe_data__card__exp_month=month,
        )
    current = Customer.objects.filter(livemode=settings.STRIPE_LIVE_MODE, date_purged__isnull=True)
    newest = current.filter(subscriber=OuterRef("subscriber")).order_by("-djstripe_created")
    customers = (
        current.filter(expiring, subscriber__isnull=False)
        # The account's newest customer, whose card card_on_file reads.
        .filter(pk=Subquery(newest.values("pk")[:1]))
        .select_related("default_payment_method", "subscriber")
    )
    claims = []
    for customer in customers:
        account = customer.subscriber
        card = card_of(customer.default_payment_method.stripe_data)
        today = account_today(account, now)
        nxt = (today.replace(day=1) + timedelta(days=32)).replace(day=1)
        if card is None or (card.exp_year, card.exp_month) != (nxt.year, nxt.month):
            continue
        claims.append(
            dict(
                account=account,
                kind="card_expiring",
                key=f"card:{account.pk}:{card.last4}:{card.exp_year}-{card.exp_month:02d}",
                card=str(card),
                month=f"{nxt:%B %Y}",
            )
        )
    return _claims_new(claims)
