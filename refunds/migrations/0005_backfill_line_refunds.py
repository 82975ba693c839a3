"""Refunds paid before billing recorded them on the lines: record them now.

Each payout gets the allocation the payouts use from now on (the approved lines in
order, the original payment's part first, credit the rest); each succeeded one becomes
billing's LineRefund rows, and the lines' `refunded` their sum. A line that had more back
than it cost (the double refunds this fixes) is recorded up to its price only.
"""

from decimal import Decimal

from django.db import migrations


def backfill(apps, schema_editor):
    RefundRequest = apps.get_model("refunds", "RefundRequest")
    RefundPayout = apps.get_model("refunds", "RefundPayout")
    OrderLine = apps.get_model("billing", "OrderLine")
    LineRefund = apps.get_model("billing", "LineRefund")
    for request in RefundRequest.objects.filter(payouts__isnull=False).distinct().order_by("pk"):
        approved = [
            [line.order_line_id, line.approved_amount]
            for line in request.lines.filter(decision="approved").order_by("pk")
            if line.approved_amount
        ]
        payouts = sorted(request.payouts.all(), key=lambda p: (p.method == "credit", p.pk))
        for payout in payouts:
            allocation, left = {}, payout.amount
            for item in approved:
                take = min(item[1], left)
                if take > 0:
                    allocation[str(item[0])] = str(take)
                    item[1] -= take
                    left -= take
            payout.allocation = allocation
            payout.save(update_fields=["allocation"])
            if payout.status != "succeeded" or (payout.method != "credit" and not payout.payment_id):
                continue
            for line_id, amount in allocation.items():
                line = OrderLine.objects.get(pk=int(line_id))
                value = min(Decimal(amount), line.amount - line.refunded)
                if value <= 0:
                    continue
                LineRefund.objects.create(
                    line=line,
                    payment_id=payout.payment_id if payout.method != "credit" else None,
                    method="credit" if payout.method == "credit" else "original",
                    amount=value,
                    currency=payout.currency,
                    reference=request.number,
                    key=f"refund-payout-{payout.pk}",
                    created_at=payout.completed_at or payout.created_at,
                )
                line.refunded += value
                line.save(update_fields=["refunded"])


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0011_line_refunds"),
        ("refunds", "0004_payout_allocation"),
    ]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
