"""Buying from the catalogue: one order of several lines of different kinds, paid in one
payment; what each line bought is the account's the moment it is paid (delivery policy
§1-2). A perpetual licence brings its mandatory first year of support (1CRM terms)."""

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from accounts import formatting
from accounts.errors import PortalError
from accounts.models import Account

from ..locks import lock_account
from ..models import Order, OrderLine, Price, Product, Subscription
from ..money import Money, prorate
from ..periods import next_period_end
from ..quotes import tax_words
from ..selectors import (
    account_today,
    catalogue,
    entitlement_refusal,
    licensed_users,
    support_contract,
    support_is_active,
    support_price,
)
from ..tax import lines_with_tax, tax_terms
from .common import require_billing_role, require_previewed, whole_number
from .orders import order_place

MAX_ITEMS = 20


MAX_QUANTITY = 10_000


# What one line can hold: the amount within its column, the units within an integer.
MAX_LINE_AMOUNT = Decimal("9999999999")


MAX_UNITS = 2_000_000_000


LIVE = (
    Subscription.Status.PENDING,
    Subscription.Status.TRIALING,
    Subscription.Status.ACTIVE,
    Subscription.Status.LAPSED,
)


@dataclass(frozen=True)
class PurchaseQuote:
    lines: list  # OrderLine fields, ready to be created
    total: Money  # before tax (what `expected_total` repeats)
    notes: list[str] = field(default_factory=list)
    tax: Money | None = None
    tax_name: str = ""

    @property
    def total_with_tax(self) -> Money:
        return self.total + self.tax if self.tax else self.total


def _parse_items(account: Account, items) -> list[tuple[Price, int]]:
    if not isinstance(items, list) or not items:
        raise PortalError("Choose at least one item to buy.", field="items")
    if len(items) > MAX_ITEMS:
        raise PortalError(f"Buy at most {MAX_ITEMS} items in one order.", field="items")
    wanted: dict[int, int] = {}
    for item in items:
        if not isinstance(item, dict):
            raise PortalError("Each item needs a price and a quantity.", field="items")
        price_id = whole_number(item.get("price"), field_name="items", label="each item's price")
        quantity = whole_number(item.get("quantity", 1), field_name="items", label="each quantity")
        if not 1 <= quantity <= MAX_QUANTITY:
            raise PortalError(f"Each quantity is between 1 and {MAX_QUANTITY:,}.", field="items")
        if price_id in wanted:
            raise PortalError("List each item once, with its quantity.", field="items")
        wanted[price_id] = quantity
    prices = {price.pk: price for price in catalogue(account=account).filter(pk__in=wanted)}
    missing = [pk for pk in wanted if pk not in prices]
    if missing:
        raise PortalError(
            f"Item {missing[0]} is not for sale to this account (in {account.currency}).",
            field="items",
        )
    return [(prices[pk], quantity) for pk, quantity in wanted.items()]


def _support_lines(account: Account, *, users: int, today: date) -> tuple[dict, str]:
    """The support a licence purchase must include (1CRM terms, on-premise)."""
    contract = support_contract(account)
    if licensed_users(account) is None or contract is None:
        price = support_price(account.currency)
        if price is None:
            raise PortalError(
                f"Support contracts are not sold in {account.currency}; licences need one.",
                field="items",
            )

        end = next_period_end(today, Price.Interval.YEAR)
        amount = (Money(price.amount, price.currency) * users).rounded()
        return (
            {
                "product": price.product,
                "price": price,
                "kind": Product.Kind.SUPPORT_CONTRACT,
                "description": (
                    f"{price.product.name}, {users} user(s), {today:%d %b %Y} to "
                    f"{end - timedelta(days=1):%d %b %Y} (first year, mandatory)"
                ),
                "quantity": users,
                "amount": amount.amount,
                "period_start": today,
                "period_end": end,
                "first_purchase": True,
                "effect": OrderLine.Effect.START,
            },
            "Support for the first year is mandatory with a perpetual licence (our terms of service).",
        )
    if not support_is_active(contract, today):
        raise PortalError(
            f"Your support contract ended on {contract.current_period_end:%d %B %Y}: renew it "
            "before buying more user licences (our terms of service, on-premise licences).",
            field="items",
        )
    price = contract.price
    amount = prorate(
        Money(price.amount, price.currency) * users,
        period_start=contract.current_period_start,
        period_end=contract.current_period_end,
        on=today,
    )
    return (
        {
            "product": price.product,
            "price": price,
            "subscription": contract,
            "kind": Product.Kind.SUPPORT_CONTRACT,
            "description": (
                f"{price.product.name}, {users} more user(s), {today:%d %b %Y} to "
                f"{contract.last_day:%d %b %Y}"
            ),
            "quantity": users,
            "amount": amount.amount,
            "period_start": today,
            "period_end": contract.current_period_end,
            "first_purchase": True,
            "effect": OrderLine.Effect.ADD_SEATS,
        },
        (
            "Users added later include their support: they join your support contract until "
            f"{formatting.day(contract.last_day)}, pro rata (our terms of service)."
        ),
    )


def purchase_quote(*, account: Account, items, today: date) -> PurchaseQuote:

    lines: list[dict] = []
    notes: list[str] = []
    parsed = _parse_items(account, items)
    if sum(1 for price, _ in parsed if price.product.kind == Product.Kind.PERPETUAL_LICENSE) > 1:
        raise PortalError("Buy one licence edition at a time.", field="items")
    live = set(
        Subscription.objects.addons()
        .filter(account=account, status__in=LIVE)
        .values_list("price__product_id", flat=True)
    )
    for price, quantity in parsed:
        product = price.product
        refusal = entitlement_refusal(account, product)
        if refusal:
            raise PortalError(refusal, field="items", code="not_entitled")
        if price.amount * quantity > MAX_LINE_AMOUNT or (product.units or 0) * quantity > MAX_UNITS:
            raise PortalError(
                f"{quantity:,} x {product.name} is more than one order can hold; split it.",
                field="items",
            )
        unit = Money(price.amount, price.currency)
        base = {
            "product": product,
            "price": price,
            "kind": product.kind,
            "quantity": quantity,
            "first_purchase": True,
            "effect": OrderLine.Effect.NONE,
        }
        if price.interval != Price.Interval.ONE_OFF:
            if product.pk in live:
                raise PortalError(f"You already have {product.name}.", field="items")
            live.add(product.pk)  # one period of an add-on per order, too
            if price.scheme == Price.Scheme.FLAT and quantity != 1:
                raise PortalError(f"{product.name} is bought once, not by quantity.", field="items")
            end = next_period_end(today, price.interval)
            amount = (unit * quantity).rounded()
            lines.append(
                {
                    **base,
                    "description": (
                        f"{product.name}, {today:%d %b %Y} to {end - timedelta(days=1):%d %b %Y}"
                    ),
                    "amount": amount.amount,
                    "period_start": today,
                    "period_end": end,
                    "effect": OrderLine.Effect.START,
                }
            )
            continue
        amount = (unit * quantity).rounded()
        line = {**base, "amount": amount.amount, "description": f"{product.name} x {quantity}"}
        if product.kind == Product.Kind.CREDIT_PACK:
            line["units"] = product.units * quantity
            line["effect"] = OrderLine.Effect.CREDITS
            line["description"] = f"{product.name} x {quantity} ({line['units']:,} credits)"
        elif product.kind == Product.Kind.QUOTA_ADDON:
            line["effect"] = OrderLine.Effect.ACTIVATE
        elif product.kind in (Product.Kind.PERPETUAL_LICENSE, Product.Kind.PLUGIN):
            line["effect"] = OrderLine.Effect.LICENCE
            line["description"] = f"{product.name}, licence for {quantity} user(s)"
        lines.append(line)
        if product.edition == Product.Edition.STARTUP:
            notes.append(
                f"{product.name} is a free download; support is not available for it (our terms of service)."
            )
        elif product.kind == Product.Kind.PERPETUAL_LICENSE:
            if (
                Subscription.objects.plans()
                .filter(account=account)
                .exclude(status=Subscription.Status.CANCELLED)
                .exists()
            ):
                raise PortalError(
                    f"{account.name} runs on a cloud plan, whose seats come with it; on-premise "
                    "licences are for a self-hosted system: open a separate account for it.",
                    field="items",
                )
            if Order.objects.filter(
                account=account,
                status=Order.Status.AWAITING_PAYMENT,
                lines__kind__in=[Product.Kind.PERPETUAL_LICENSE, Product.Kind.SUPPORT_CONTRACT],
            ).exists():
                raise PortalError(
                    "An order for licences or support awaits payment: pay or cancel it before "
                    "ordering more licences.",
                    field="items",
                )
            support, note = _support_lines(account, users=quantity, today=today)
            lines.append(support)
            notes.append(note)
    total = Money(sum((line["amount"] for line in lines), Decimal(0)), account.currency)
    # The tax the order will be charged, per line as the order computes it (billing.tax).
    taxed = lines_with_tax(account, lines, today)
    tax = Money(sum((line.get("tax_amount", 0) for line in taxed), Decimal(0)), account.currency)
    name = tax_terms(account, today).describe()
    if name:
        notes.append(tax_words(total, tax, name).strip())
    return PurchaseQuote(lines=lines, total=total, notes=notes, tax=tax, tax_name=name)


def purchase_place(
    *, actor, account: Account, items, expected_total: Money | None = None, now=None
) -> Order:
    """Buy catalogue items in one order, paid in one payment (credit first)."""

    now = now or timezone.now()
    with transaction.atomic():
        account = lock_account(account)
        require_billing_role(actor=actor, account=account)
        if account.reseller_id:
            raise PortalError(
                f"{account.name}'s billing is provided by {account.reseller.name}.", field="items"
            )
        quote = purchase_quote(account=account, items=items, today=account_today(account, now))
        require_previewed(quote.total, expected_total, field="items")
        for line in quote.lines:
            if line["effect"] == OrderLine.Effect.START:
                line["subscription"] = Subscription.objects.create(
                    account=account,
                    price=line["price"],
                    quantity=line["quantity"],
                    status=Subscription.Status.PENDING,
                    current_period_start=line["period_start"],
                    current_period_end=line["period_end"],
                    created_at=now,
                )
        order = order_place(
            account=account,
            lines=quote.lines,
            actor=actor,
            now=now,
            changes={
                "purchase": [line["description"] for line in quote.lines],
                "total": str(quote.total),
            },
        )
    order.refresh_from_db()
    return order
