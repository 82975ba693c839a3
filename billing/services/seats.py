"""Seats paid: the users of the account's perpetual licences (on-premise), or else the
quantity of its live per-seat plan (1CRM terms). Users & seats reads the limit."""

from django.db.models import Sum

from accounts.models import Account
from accounts.services import audit_record

from ..models import Price, Subscription
from ..selectors import licensed_users


def seats_paid_sync(account: Account, *, actor) -> None:
    """Seats paid are the users of the account's perpetual licences (on-premise), or
    else the quantity of its live per-seat plan (1CRM terms)."""
    seats = licensed_users(account)
    if seats is None:
        seats = (
            Subscription.objects.plans()
            .filter(
                account=account,
                status__in=[Subscription.Status.ACTIVE, Subscription.Status.TRIALING],
                price__scheme=Price.Scheme.PER_SEAT,
            )
            .aggregate(total=Sum("quantity"))["total"]
        )
    if seats is not None and seats != account.seats_paid:
        old = account.seats_paid
        Account.objects.filter(pk=account.pk).update(seats_paid=seats)
        account.seats_paid = seats
        audit_record(
            actor=actor,
            action="account.seats_paid_changed",
            target=account,
            account=account,
            changes={"seats_paid": [old, seats], "by": "subscription"},
        )
