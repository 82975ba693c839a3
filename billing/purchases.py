"""Buying from the catalogue, credit packs and metered usage.

A purchase is one order of several lines of different kinds, paid in one payment;
what each line bought is the account's the moment it is paid (delivery policy
§1-2): keys issued and mailed, credits added, add-ons active.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import F, Sum
from django.utils import timezone

from accounts.errors import PortalError
from accounts.models import Account
from accounts.services import audit_record, clean_text, require_staff

from . import licences
from .models import CreditUse, Order, OrderLine, Price, Product, Subscription, UsageRecord
from .money import Money, prorate

PURCHASABLE_KINDS = (
    Product.Kind.PREMIUM_FEATURE,
    Product.Kind.QUOTA_ADDON,
    Product.Kind.CREDIT_PACK,
    Product.Kind.PERPETUAL_LICENSE,
    Product.Kind.PLUGIN,
    Product.Kind.SERVICE,
)
DELIVERED_ON_PAYMENT = frozenset(
    {OrderLine.Effect.LICENCE, OrderLine.Effect.CREDITS, OrderLine.Effect.ACTIVATE}
)
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


def catalogue(*, account: Account):
    """What the account can buy on the Billing page, in its currency and for how it runs:
    a cloud account is not offered on-premise items, nor an on-premise one cloud items."""
    prices = (
        Price.objects.filter(
            is_active=True,
            product__is_active=True,
            product__kind__in=PURCHASABLE_KINDS,
            currency=account.currency,
        )
        .select_related("product")
        .order_by("product__kind", "product__name", "interval")
    )
    if licences.licensed_users(account) is not None:
        return prices.exclude(product__deployment=Product.Deployment.CLOUD)
    if (
        Subscription.objects.plans()
        .filter(account=account)
        .exclude(status=Subscription.Status.CANCELLED)
        .exists()
    ):
        return prices.exclude(product__deployment=Product.Deployment.ON_PREMISE)
    return prices


@dataclass(frozen=True)
class PurchaseQuote:
    lines: list  # OrderLine fields, ready to be created
    total: Money
    notes: list[str] = field(default_factory=list)


def _whole(value, *, field_name: str, label: str) -> int:
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdecimal():
        value = int(value.strip())
    if not isinstance(value, int) or isinstance(value, bool):
        raise PortalError(f"Give {label} as a whole number.", field=field_name)
    return value


def _parse_items(account: Account, items) -> list[tuple[Price, int]]:
    if not isinstance(items, list) or not items:
        raise PortalError("Choose at least one item to buy.", field="items")
    if len(items) > MAX_ITEMS:
        raise PortalError(f"Buy at most {MAX_ITEMS} items in one order.", field="items")
    wanted: dict[int, int] = {}
    for item in items:
        if not isinstance(item, dict):
            raise PortalError("Each item needs a price and a quantity.", field="items")
        price_id = _whole(item.get("price"), field_name="items", label="each item's price")
        quantity = _whole(item.get("quantity", 1), field_name="items", label="each quantity")
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
    contract = licences.support_contract(account)
    if licences.licensed_users(account) is None or contract is None:
        price = licences.support_price(account.currency)
        if price is None:
            raise PortalError(
                f"Support contracts are not sold in {account.currency}; licences need one.",
                field="items",
            )
        from .services import next_period_end

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
            "Support for the first year is mandatory with a perpetual licence (1CRM terms).",
        )
    if not licences.support_is_active(contract, today):
        raise PortalError(
            f"Your support contract ended on {contract.current_period_end:%d %B %Y}: renew it "
            "before buying more user licences (1CRM terms, on-premise).",
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
            f"{contract.last_day:%d %B %Y}, pro rata (1CRM terms)."
        ),
    )


def purchase_quote(*, account: Account, items, today: date) -> PurchaseQuote:
    from .services import next_period_end

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
                f"{product.name} is a free download; support is not available for it (1CRM terms)."
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
    return PurchaseQuote(lines=lines, total=total, notes=notes)


def purchase_place(
    *, actor, account: Account, items, expected_total: Money | None = None, now=None
) -> Order:
    """Buy catalogue items in one order, paid in one payment (credit first)."""
    from .services import (
        _lock,
        _place_order,
        _require_billing_role,
        _require_previewed,
        account_today,
    )

    now = now or timezone.now()
    with transaction.atomic():
        account = _lock(account)
        _require_billing_role(actor=actor, account=account)
        if account.reseller_id:
            raise PortalError(
                f"{account.name}'s billing is provided by {account.reseller.name}.", field="items"
            )
        quote = purchase_quote(account=account, items=items, today=account_today(account, now))
        _require_previewed(quote.total, expected_total, field="items")
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
        order = _place_order(
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


def deliver_line(line: OrderLine, *, actor, now) -> None:
    """A paid line's goods, at once: keys issued, credits usable, add-ons active."""
    if line.effect == OrderLine.Effect.LICENCE:
        licences.licence_issue(line, actor=actor, now=now)
        line.delivery = OrderLine.Delivery.KEY_SENT
    else:
        line.activated_at = now
    line.delivered_at = now
    line.save(update_fields=["delivery", "delivered_at", "activated_at"])
    audit_record(
        actor=actor,
        action="order_line.delivered",
        target=line,
        account=line.order.account,
        changes={"line": line.description, "order": line.order.number},
    )


def service_mark_accepted(*, actor, line: OrderLine, now=None) -> OrderLine:
    """Staff record that a paid service was delivered and accepted by the customer."""
    now = now or timezone.now()
    with transaction.atomic():
        require_staff(actor, "billing.change_order")
        line = OrderLine.objects.select_for_update().select_related("order").get(pk=line.pk)
        if line.kind != Product.Kind.SERVICE:
            raise PortalError(f"“{line.description}” is not a service.", field="line")
        if line.order.status != Order.Status.PAID:
            raise PortalError(f"{line.order.number} is not paid yet.", field="line")
        if line.delivery == OrderLine.Delivery.ACCEPTED:
            return line
        line.delivery = OrderLine.Delivery.ACCEPTED
        line.delivered_at = now
        line.save(update_fields=["delivery", "delivered_at"])
        audit_record(
            actor=actor,
            action="order_line.accepted",
            target=line,
            account=line.order.account,
            changes={"line": line.description, "order": line.order.number},
        )
    return line


# --- credit packs -------------------------------------------------------------------------


@dataclass(frozen=True)
class CreditBalance:
    product: Product
    units: int
    used: int

    @property
    def left(self) -> int:
        return self.units - self.used


def _paid_packs(account: Account):
    return OrderLine.objects.filter(
        order__account=account,
        order__status=Order.Status.PAID,
        kind=Product.Kind.CREDIT_PACK,
        units__isnull=False,
    )


def credits_left(*, account: Account) -> list[CreditBalance]:
    rows = (
        _paid_packs(account)
        .values("product")
        .annotate(units=Sum("units"), used=Sum("units_used"))
        .order_by("product")
    )
    products = Product.objects.in_bulk([row["product"] for row in rows])
    return [
        CreditBalance(product=products[row["product"]], units=row["units"], used=row["used"])
        for row in rows
    ]


def credits_use(
    *, actor, account: Account, product: Product, units, reference: str, now=None
) -> CreditUse:
    """Take units from the account's packs of `product`, the oldest pack first.

    The same reference twice is one use (a retried call changes nothing)."""
    from .services import _lock

    units = _whole(units, field_name="units", label="the units")
    if units < 1:
        raise PortalError("Use at least one credit.", field="units")
    reference = clean_text(reference, field="reference", label="the reference", max_length=100)
    now = now or timezone.now()
    with transaction.atomic():
        _lock(account)
        done = CreditUse.objects.filter(account=account, reference=reference).first()
        if done is not None:
            if (done.product_id, done.units) != (product.pk, units):
                raise PortalError(
                    f"Reference {reference} was already used for {done.units} credits.",
                    field="reference",
                )
            return done
        packs = list(
            _paid_packs(account)
            .filter(product=product, units_used__lt=F("units"))
            .select_for_update()
            .order_by("order__paid_at", "pk")
        )
        left = sum(pack.units - pack.units_used for pack in packs)
        if left < units:
            raise PortalError(
                f"Only {left:,} {product.name} credits are left; buy a pack to use {units:,}.",
                field="units",
            )
        need = units
        for pack in packs:
            take = min(pack.units - pack.units_used, need)
            pack.units_used += take
            pack.save(update_fields=["units_used"])
            need -= take
            if need == 0:
                break
        use = CreditUse.objects.create(
            account=account, product=product, units=units, reference=reference, created_at=now
        )
        audit_record(
            actor=actor,
            action="credits.used",
            target=use,
            account=account,
            changes={"units": units, "left": left - units, "product": product.code},
        )
    return use


# --- usage ----------------------------------------------------------------------------------


def usage_price(account: Account, product: Product) -> Price | None:
    return (
        Price.objects.filter(
            product=product,
            product__kind=Product.Kind.USAGE,
            currency=account.currency,
            is_active=True,
        )
        .order_by("pk")
        .first()
    )


def usage_record(
    *, actor, account: Account, product: Product, quantity, reference: str, used_on=None, now=None
) -> UsageRecord:
    """Record metered use; the same reference twice is one record."""
    from .services import account_today

    now = now or timezone.now()
    quantity = _whole(quantity, field_name="quantity", label="the quantity")
    if quantity < 1:
        raise PortalError("Record a quantity of at least 1.", field="quantity")
    reference = clean_text(reference, field="reference", label="the reference", max_length=100)
    if product.kind != Product.Kind.USAGE or usage_price(account, product) is None:
        raise PortalError(
            f"{product.name} is not metered for this account's currency.", field="product"
        )
    today = account_today(account, now)
    used_on = used_on or today
    if used_on > today:
        raise PortalError("Usage cannot be recorded for a day still to come.", field="used_on")
    if used_on < today.replace(day=1):
        raise PortalError(
            f"Usage before {today.replace(day=1):%d %B %Y} belongs to a month already billed.",
            field="used_on",
        )
    existing = UsageRecord.objects.filter(account=account, reference=reference).first()
    if existing is None:
        try:
            with transaction.atomic():
                record = UsageRecord.objects.create(
                    account=account,
                    product=product,
                    quantity=quantity,
                    used_on=used_on,
                    reference=reference,
                    recorded_at=now,
                )
                audit_record(
                    actor=actor,
                    action="usage.recorded",
                    target=record,
                    account=account,
                    changes={"quantity": quantity, "used_on": str(used_on)},
                )
                return record
        except IntegrityError:
            existing = UsageRecord.objects.get(account=account, reference=reference)
    if (existing.product_id, existing.quantity) != (product.pk, quantity):
        raise PortalError(
            f"Reference {reference} was already recorded with another quantity.",
            field="reference",
        )
    return existing


def _month_end(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


def usage_bill(*, account: Account, now=None) -> Order | None:
    """Charge the usage of the months that have ended, one line per product and month."""
    from .services import _lock, _place_order, account_today

    now = now or timezone.now()
    with transaction.atomic():
        account = _lock(account)
        first_of_month = account_today(account, now).replace(day=1)
        records = list(
            UsageRecord.objects.select_for_update()
            .filter(account=account, line__isnull=True, used_on__lt=first_of_month)
            .select_related("product")
            .order_by("used_on", "pk")
        )
        if not records:
            return None
        groups: dict = defaultdict(list)
        for record in records:
            groups[(record.product, record.used_on.replace(day=1))].append(record)
        lines = []
        for (product, month), rows in sorted(groups.items(), key=lambda g: (g[0][1], g[0][0].pk)):
            price = usage_price(account, product)
            if price is None:
                raise PortalError(f"{product.name} has no usage price in {account.currency}.")
            quantity = sum(row.quantity for row in rows)
            amount = (Money(price.amount, price.currency) * quantity).rounded()
            lines.append(
                {
                    "product": product,
                    "price": price,
                    "kind": Product.Kind.USAGE,
                    "description": f"{product.name}: {quantity:,} in {month:%B %Y}",
                    "quantity": quantity,
                    "amount": amount.amount,
                    "period_start": month,
                    "period_end": _month_end(month),
                    "first_purchase": False,
                    "effect": OrderLine.Effect.USAGE,
                    "_records": rows,
                }
            )
        records_by_line = [line.pop("_records") for line in lines]
        order = _place_order(
            account=account,
            lines=lines,
            actor=None,
            now=now,
            changes={"usage": [line["description"] for line in lines]},
        )
        for line, rows in zip(order.lines.order_by("pk"), records_by_line, strict=True):
            UsageRecord.objects.filter(pk__in=[row.pk for row in rows]).update(line=line)
    return order


def usage_bill_due(*, now=None) -> int:
    """The beat job: every account with usage from a month that has ended."""
    import logging

    now = now or timezone.now()
    billed = 0
    # A day of margin either side: accounts' local dates differ from UTC's.
    accounts = (
        UsageRecord.objects.filter(line__isnull=True, used_on__lt=now.date() + timedelta(days=1))
        .values_list("account_id", flat=True)
        .distinct()
    )
    for account in Account.objects.filter(pk__in=list(accounts)):
        try:
            billed += usage_bill(account=account, now=now) is not None
        except Exception:
            logging.getLogger(__name__).exception("Usage billing of %s failed", account.pk)
    return billed


@dataclass(frozen=True)
class UsageSummary:
    product: Product
    price: Price | None
    quantity: int  # this month so far
    unbilled_before: int  # earlier months not yet charged

    @property
    def estimate(self) -> Money | None:
        if self.price is None:
            return None
        return (Money(self.price.amount, self.price.currency) * self.quantity).rounded()


def usage_summary(*, account: Account, today: date) -> list[UsageSummary]:
    first = today.replace(day=1)
    rows = (
        UsageRecord.objects.filter(account=account)
        .filter(used_on__gte=first)
        .values("product")
        .annotate(total=Sum("quantity"))
    )
    earlier = dict(
        UsageRecord.objects.filter(account=account, line__isnull=True, used_on__lt=first)
        .values("product")
        .annotate(total=Sum("quantity"))
        .values_list("product", "total")
    )
    current = {row["product"]: row["total"] for row in rows}
    ids = set(current) | set(earlier)
    products = Product.objects.in_bulk(ids)
    prices = {
        price.product_id: price
        for price in Price.objects.filter(
            product_id__in=ids, currency=account.currency, is_active=True
        )
    }
    return [
        UsageSummary(
            product=products[pk],
            price=prices.get(pk),
            quantity=current.get(pk, 0),
            unbilled_before=earlier.get(pk, 0),
        )
        for pk in sorted(ids)
    ]


# --- support renewal ------------------------------------------------------------------------


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
    from .services import (
        _lock,
        _lock_subscription,
        _open_order_for,
        _place_order,
        _require_billing_role,
        _require_previewed,
        account_today,
    )

    now = now or timezone.now()
    users = _whole(users, field_name="users", label="the users")
    with transaction.atomic():
        account = _lock(account)
        _require_billing_role(actor=actor, account=account)
        quote = licences.support_renewal_quote(
            account=account, users=users, today=account_today(account, now)
        )
        contract = _lock_subscription(quote.contract)
        if _open_order_for(contract) is not None:
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
        _require_previewed(quote.amount, expected_amount, field="users")
        period = quote.period
        order = _place_order(
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
    from .services import _lock, _place_order

    now = now or timezone.now()
    price = _incident_price(account)
    if price is None:
        raise PortalError(
            f"Extra support incidents are not sold in {account.currency}: write to billing.",
            field="confirm_extra",
        )
    with transaction.atomic():
        account = _lock(account)
        return _place_order(
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


def _incident_price(account: Account) -> Price | None:
    """The catalogue's price of an extra support incident in the account's currency."""
    return (
        Price.objects.filter(
            is_active=True,
            product__is_active=True,
            product__kind=Product.Kind.SUPPORT_INCIDENT,
            currency=account.currency,
        )
        .select_related("product")
        .order_by("pk")
        .first()
    )


def support_incident_price(account: Account) -> Money | None:
    price = _incident_price(account)
    return Money(price.amount, price.currency).rounded() if price else None
