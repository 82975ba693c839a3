from django.db import migrations
from django.db.models import Sum
from django.db.models.functions import Coalesce


def fill(apps, schema_editor):
    """Each account's credit packs per product, summed once from the paid packs' lines (as
    billing.services.credit_balance.credit_balance_recount does)."""
    OrderLine = apps.get_model("billing", "OrderLine")
    CreditPackBalance = apps.get_model("billing", "CreditPackBalance")
    sums = (
        OrderLine.objects.filter(order__status="paid", kind="credit_pack", units__isnull=False)
        .values("order__account_id", "product_id")
        .annotate(
            total=Coalesce(Sum("units"), 0),
            spent=Coalesce(Sum("units_used"), 0),
            back=Coalesce(Sum("units_refunded"), 0),
        )
        .order_by()
    )
    CreditPackBalance.objects.all().delete()
    CreditPackBalance.objects.bulk_create(
        CreditPackBalance(
            account_id=row["order__account_id"],
            product_id=row["product_id"],
            units=row["total"],
            used=row["spent"],
            refunded=row["back"],
        )
        for row in sums
    )


class Migration(migrations.Migration):
    dependencies = [("billing", "0019_account_lists_by_date_indexes_credit_pack_balance")]

    operations = [migrations.RunPython(fill, migrations.RunPython.noop, elidable=True)]
