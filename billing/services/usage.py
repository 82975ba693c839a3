"""What is used: credits taken from packs (oldest first, once per reference), and metered
usage recorded once per reference and charged after each month ends."""

import logging
from collections import defaultdict
from datetime import timedelta
from zoneinfo import ZoneInfo

from django.db import IntegrityError, transaction
from django.db.models import F, Min
from django.utils import timezone

from accounts.errors import PortalError
from accounts.models import Account
from accounts.services import audit_record, clean_text

from ..locks import lock_account
from ..models import CreditUse, Order, OrderLine, Product, UsageRecord
from ..money import Money
from ..periods import first_of_next_month
from ..selectors import account_today, credit_packs_paid, usage_price
from .common import whole_number
from .credit_balance import credit_balance_move
from .orders import order_place

logger = logging.getLogger(__name__)


def credits_use(
    *, actor, account: Account, product: Product, units, reference: str, now=None
) -> CreditUse:
    """Take units from the account's packs of `product`, the oldest pack first.

    The same reference twice is one use (a retried call changes nothing)."""

    units = whole_number(units, field_name="units", label="the units")
    if units < 1:
        raise PortalError("Use at least one credit.", field="units")
    reference = clean_text(reference, field="reference", label="the reference", max_length=100)
    now = now or timezone.now()
    with transaction.atomic():
        lock_account(account)
        done = CreditUse.objects.filter(account=account, reference=reference).first()
        if done is not None:
            if (done.product_id, done.units) != (product.pk, units):
                raise PortalError(
                    f"Reference {reference} was already used for {done.units} credits.",
                    field="reference",
                )
            return done
        packs = list(
            credit_packs_paid(account)
            .filter(product=product, units_used__lt=F("units") - F("units_refunded"))
            .select_for_update(no_key=True)
            .order_by("order__paid_at", "pk")
        )
        left = sum(pack.units_left for pack in packs)
        if left < units:
            raise PortalError(
                f"Only {left:,} {product.name} credits are left; buy a pack to use {units:,}.",
                field="units",
            )
        need = units
        for pack in packs:
            take = min(pack.units_left, need)
            pack.units_used += take
            pack.save(update_fields=["units_used"])
            need -= take
            if need == 0:
                break
        credit_balance_move(account_id=account.pk, product_id=product.pk, used=units)
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


def usage_record(
    *, actor, account: Account, product: Product, quantity, reference: str, used_on=None, now=None
) -> UsageRecord:
    """Record metered use; the same reference twice is one record."""

    now = now or timezone.now()
    quantity = whole_number(quantity, field_name="quantity", label="the quantity")
    if quantity < 1:
        raise PortalError("Record a quantity of at least 1.", field="quantity")
    reference = clean_text(reference, field="reference", label="the reference", max_length=100)
    price = usage_price(account, product) if product.kind in Product.PER_USE_KINDS else None
    if price is None:
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
                    price=price,
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


def usage_record_batch(
    *, actor, account: Account, product: Product, entries, now=None
) -> list[tuple[UsageRecord, bool]]:
    """Record many uses of one product at once: `entries` are (quantity, reference,
    used_on or None). Each reference is once, as in usage_record; says per entry whether
    it is new. One audit row for the batch. The caller holds the account's lock."""
    now = now or timezone.now()
    price = usage_price(account, product) if product.kind in Product.PER_USE_KINDS else None
    if price is None:
        raise PortalError(
            f"{product.name} is not metered for this account's currency.", field="product"
        )
    today = account_today(account, now)
    first = today.replace(day=1)
    rows = []
    for quantity, reference, used_on in entries:
        used_on = used_on or today
        if used_on > today:
            raise PortalError("Usage cannot be recorded for a day still to come.", field="used_on")
        if used_on < first:
            raise PortalError(
                f"Usage before {first:%d %B %Y} belongs to a month already billed.",
                field="used_on",
            )
        rows.append((quantity, reference, used_on))
    existing = {
        record.reference: record
        for record in UsageRecord.objects.filter(
            account=account, reference__in=[reference for _, reference, _ in rows]
        )
    }
    new = [
        UsageRecord(
            account=account,
            product=product,
            price=price,
            quantity=quantity,
            used_on=used_on,
            reference=reference,
            recorded_at=now,
        )
        for quantity, reference, used_on in rows
        if reference not in existing
    ]
    if new:
        with transaction.atomic():
            UsageRecord.objects.bulk_create(new)
            audit_record(
                actor=actor,
                action="usage.recorded",
                target=new[0],
                account=account,
                changes={
                    "records": len(new),
                    "quantity": sum(record.quantity for record in new),
                    "product": product.code,
                },
            )
    created = {record.reference: record for record in new}
    out = []
    for quantity, reference, _ in rows:
        record = created.get(reference) or existing[reference]
        if reference in existing and (record.product_id, record.quantity) != (product.pk, quantity):
            raise PortalError(
                f"Reference {reference} was already recorded with another quantity.",
                field="reference",
            )
        out.append((record, reference in created))
    return out


def usage_bill(*, account: Account | int, now=None) -> Order | None:
    """Charge the usage of the months that have ended, one line per product and month."""

    now = now or timezone.now()
    with transaction.atomic():
        account = lock_account(account)
        first_of_month = account_today(account, now).replace(day=1)
        records = list(
            UsageRecord.objects.select_for_update(no_key=True, of=("self",))
            .filter(account=account, line__isnull=True, used_on__lt=first_of_month)
            .select_related("product", "price")
            .order_by("used_on", "pk")
        )
        if not records:
            return None
        current: dict = {}
        groups: dict = defaultdict(list)
        for record in records:
            # Billed at the price it was used at (a price change bills only later use).
            price = record.price
            if price is None:
                if record.product_id not in current:
                    current[record.product_id] = usage_price(account, record.product)
                price = current[record.product_id]
            if price is None:
                raise PortalError(
                    f"{record.product.name} has no usage price in {account.currency}."
                )
            groups[(record.product, record.used_on.replace(day=1), price)].append(record)
        lines = []
        for (product, month, price), rows in sorted(
            groups.items(), key=lambda g: (g[0][1], g[0][0].pk, g[0][2].pk)
        ):
            quantity = sum(row.quantity for row in rows)
            amount = (Money(price.amount, price.currency) * quantity).rounded()
            lines.append(
                {
                    "product": product,
                    "price": price,
                    "kind": product.kind,
                    "description": f"{product.name}: {quantity:,} in {month:%B %Y}",
                    "quantity": quantity,
                    "amount": amount.amount,
                    "period_start": month,
                    "period_end": first_of_next_month(month),
                    "first_purchase": False,
                    "effect": OrderLine.Effect.USAGE,
                    "_records": rows,
                }
            )
        records_by_line = [line.pop("_records") for line in lines]
        order = order_place(
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
    """The beat job: every account with unbilled usage from a month that has ended in its
    own zone. Only those accounts are locked: a run with nothing to bill makes one query."""
    now = now or timezone.now()
    # The latest local date anywhere is a day ahead of UTC's: usage before the first of
    # that date's month is all that can be due. The index usage_unbilled_by_day serves it.
    latest_first = (now.date() + timedelta(days=1)).replace(day=1)
    candidates = (
        UsageRecord.objects.filter(line__isnull=True, used_on__lt=latest_first)
        .values("account_id", "account__timezone")
        .annotate(earliest=Min("used_on"))
        .order_by("account_id")
    )
    billed = 0
    for row in candidates:
        # The exact test in the account's zone: its month must have ended there.
        today = timezone.localtime(now, ZoneInfo(row["account__timezone"])).date()
        if row["earliest"] >= today.replace(day=1):
            continue
        try:
            billed += usage_bill(account=row["account_id"], now=now) is not None
        except Exception:
            logger.exception("Usage billing of %s failed", row["account_id"])
    return billed
