"""The stored sum of an account's credit packs per product (CreditPackBalance): units
bought in paid orders, used, and taken back by refunds. Every service that changes a
pack's units moves it here in the same transaction, so pages read one row per product
instead of summing every pack the account ever bought."""

from django.db.models import F, Sum
from django.db.models.functions import Coalesce

from ..models import CreditPackBalance, Order, OrderLine, Product


def credit_balance_move(*, account_id: int, product_id: int, units=0, used=0, refunded=0):
    """Add what changed on one product's packs (the caller holds the account's lock)."""
    moved = CreditPackBalance.objects.filter(account_id=account_id, product_id=product_id).update(
        units=F("units") + units, used=F("used") + used, refunded=F("refunded") + refunded
    )
    if not moved:
        CreditPackBalance.objects.create(
            account_id=account_id, product_id=product_id, units=units, used=used, refunded=refunded
        )


def credit_balance_paid(order: Order, lines) -> None:
    """A paid order's credit packs become usable: their units join the balance."""
    for line in lines:
        if line.kind == Product.Kind.CREDIT_PACK and line.units:
            credit_balance_move(
                account_id=order.account_id,
                product_id=line.product_id,
                units=line.units,
                used=line.units_used,
                refunded=line.units_refunded,
            )


def credit_balance_recount(account_id: int | None = None) -> int:
    """Write every balance again from the paid packs' lines (the data migration's sum, and
    a repair); returns the number of rows written."""
    lines = OrderLine.objects.filter(
        order__status=Order.Status.PAID, kind=Product.Kind.CREDIT_PACK, units__isnull=False
    )
    rows = CreditPackBalance.objects.all()
    if account_id is not None:
        lines = lines.filter(order__account_id=account_id)
        rows = rows.filter(account_id=account_id)
    sums = (
        lines.values("order__account_id", "product_id")
        .annotate(
            total=Coalesce(Sum("units"), 0),
            spent=Coalesce(Sum("units_used"), 0),
            back=Coalesce(Sum("units_refunded"), 0),
        )
        .order_by()
    )
    rows.delete()
    created = CreditPackBalance.objects.bulk_create(
        CreditPackBalance(
            account_id=row["order__account_id"],
            product_id=row["product_id"],
            units=row["total"],
            used=row["spent"],
            refunded=row["back"],
        )
        for row in sums
    )
    return len(created)
