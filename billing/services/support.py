"""On-premise support renewals (1CRM terms) and extra support incidents, ordered through
billing like everything else."""

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from accounts.errors import PortalError
from accounts.models import Account

from ..locks import lock_account, lock_subscription
from ..models import Order, OrderLine, Product
from ..money import Money
from ..selectors import (
    account_today,
    order_open_for,
    support_incident_price_row,
    support_renewal_quote,
)
from .common import require_billing_role, require_previewed, whole_number
from .orders import order_place


def support_renew(
    *,
    actor,
    account: Account,
    users,
    renounce: bool = False,
    expected_amount: Money | None = None,
    now=None,
) -> Order:
    """Renew the on-premise support contract (1CRM terms), renouncing excess licences
    only when the customer confirmed it."""

    now = now or timezone.now()
    users = whole_number(users, field_name="users", label="the users")
    with transaction.atomic():
        account = lock_account(account)
        require_billing_role(actor=actor, account=account)
        quote = support_renewal_quote(
            account=account, users=users, today=account_today(account, now)
        )
        contract = lock_subscription(quote.contract)
        if order_open_for(contract) is not None:
            raise PortalError(
                "An order for this support contract awaits payment; pay or cancel it first.",
                field="users",
            )
        if quote.renounced and not renounce:
            raise PortalError(
                f"Renewing for {quote.users} users renounces {quote.renounced} of your "
                f"{quote.licensed} user licences: confirm that you renounce them.",
                field="renounce",
            )
        require_previewed(quote.amount, expected_amount, field="users")
        period = quote.period
        order = order_place(
            account=account,
            line={
                "product": contract.price.product,
                "price": contract.price,
                "subscription": contract,
                "kind": Product.Kind.SUPPORT_CONTRACT,
                "description": (
                    f"{contract.price.product.name}, {quote.users} user(s), "
                    f"{period.start:%d %b %Y} to {period.end:%d %b %Y}"
                ),
                "quantity": quote.users,
                "amount": quote.amount.amount,
                "period_start": period.start,
                "period_end": period.end + timedelta(days=1),
                "first_purchase": False,
                "effect": OrderLine.Effect.RENEW,
            },
            actor=actor,
            now=now,
            changes={
                "support_renewal": [str(period.start), str(period.end)],
                "users": quote.users,
                "renounced": quote.renounced,
                "total": str(quote.amount),
            },
        )
    order.refresh_from_db()
    return order


def support_incident_order(*, actor, account: Account, description: str, now=None) -> Order:
    """Order one extra support incident (1CRM terms: US$150 beyond the yearly quota), at
    the catalogue's price in the account's currency; credit pays first."""

    now = now or timezone.now()
    price = support_incident_price_row(account)
    if price is None:
        raise PortalError(
            f"Extra support incidents are not sold in {account.currency}: write to billing.",
            field="confirm_extra",
        )
    with transaction.atomic():
        account = lock_account(account)
        return order_place(
            account=account,
            line={
                "product": price.product,
                "price": price,
                "kind": Product.Kind.SUPPORT_INCIDENT,
                "description": description[:300],
                "quantity": 1,
                "amount": Money(price.amount, price.currency).rounded().amount,
                "first_purchase": True,
                "effect": OrderLine.Effect.NONE,
            },
            actor=actor,
            now=now,
            changes={"extra_incident": description[:100], "total": str(price.amount)},
        )
