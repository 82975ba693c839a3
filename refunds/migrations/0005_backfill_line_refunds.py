"""Refunds paid before billing recorded them on the lines: record them now.

Each payout gets the allocation the payouts use from now on (the approved lines in
order, the original payment's part first, credit the rest):

- a succeeded one becomes billing's LineRefund rows, and the lines' `refunded` their
  sum; a line that had more back than it cost (the double refunds this fixes) is
  recorded up to its price only;
- one still to pay is given what is left of its purchases after those: less than it
  was approved for, it pays that much less (or, with nothing left, fails), and says why;
  one the gateway already has in hand keeps its amount and is flagged for staff;
- the credit packs of refunds already processed lose the units the money bought back,
  as refunds do from now on.

The rules are copied here as they are today (a migration does not import app code).
"""

from decimal import ROUND_HALF_UP, Decimal

from django.db import migrations


def _allocate(approved, total):
    allocation, left = {}, total
    for item in approved:
        take = min(item[1], left)
        if take > 0:
            allocation[str(item[0])] = str(take)
            item[1] -= take
            left -= take
    return allocation


def backfill(apps, schema_editor):
    RefundRequest = apps.get_model("refunds", "RefundRequest")
    OrderLine = apps.get_model("billing", "OrderLine")
    LineRefund = apps.get_model("billing", "LineRefund")
    requests = RefundRequest.objects.filter(payouts__isnull=False).distinct().order_by("pk")
    waiting = []
    for request in requests:
        approved = [
            [line.order_line_id, line.approved_amount]
            for line in request.lines.filter(decision="approved").order_by("pk")
            if line.approved_amount
        ]
        payouts = sorted(request.payouts.all(), key=lambda p: (p.method == "credit", p.pk))
        for payout in payouts:
            payout.allocation = _allocate(approved, payout.amount)
            payout.save(update_fields=["allocation"])
            if payout.status != "succeeded":
                waiting.append(payout)
                continue
            if payout.method != "credit" and not payout.payment_id:
                continue
            for line_id, amount in payout.allocation.items():
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
    reserved: dict[int, Decimal] = {}
    for payout in waiting:  # what is left of each purchase, in the order they were decided
        capped, short = {}, []
        for line_id, amount in payout.allocation.items():
            line = OrderLine.objects.get(pk=int(line_id))
            room = line.amount - line.refunded - reserved.get(line.pk, Decimal(0))
            value = max(min(Decimal(amount), room), Decimal(0))
            if value < Decimal(amount):
                short.append(f"“{line.description}” had {line.refunded} back already")
            if value > 0:
                capped[line_id] = str(value)
                reserved[line.pk] = reserved.get(line.pk, Decimal(0)) + value
        if not short:
            continue
        note = "Before refunds were recorded on purchases: " + "; ".join(short)
        if payout.method == "stripe" and payout.status == "pending" and payout.reference:
            payout.error = f"{note}. The gateway has it in hand: check it by hand."[:300]
            payout.save(update_fields=["error"])
            continue
        total = sum((Decimal(v) for v in capped.values()), Decimal(0))
        payout.allocation = capped
        if total > 0:
            payout.amount = total
            payout.error = f"{note}: it pays back {total} instead."[:300]
        else:
            payout.status = "failed"
            payout.error = f"{note}: nothing is left to pay back."[:300]
        payout.save(update_fields=["allocation", "amount", "status", "error"])
    for request in requests.filter(state__in=["paid", "credited", "closed"]):
        for refund_line in request.lines.filter(decision="approved"):
            line = OrderLine.objects.get(pk=refund_line.order_line_id)
            if line.kind != "credit_pack" or not line.units or line.refunded <= 0:
                continue
            unused = line.units - line.units_used
            if line.refunded >= line.amount:
                target = unused
            else:
                exact = (line.refunded * line.units / line.amount).quantize(
                    Decimal(1), rounding=ROUND_HALF_UP
                )
                target = min(int(exact), unused)
            if target > line.units_refunded:
                line.units_refunded = target
                line.save(update_fields=["units_refunded"])


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0011_line_refunds"),
        ("refunds", "0004_payout_allocation"),
    ]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
