"""Load a demo refund: Acme bought the Aurius AI plugin five days ago and got it back as
account credit (acelle §3: not yet downloaded), with its credit note. Idempotent."""

from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from accounts.models import Account, User
from billing.models import Price
from billing.services import payment_record_manual, purchase_place
from refunds import services
from refunds.models import RefundRequest


class Command(BaseCommand):
    help = "Create a demo refund with its credit note (safe to run again)."

    def handle(self, *args, **options):
        if not settings.DEBUG:
            raise CommandError("Refusing to load the demo refund with DEBUG off.")
        account = Account.objects.filter(name="Acme Corporation").first()
        staff = User.objects.filter(is_superuser=True).order_by("pk").first()
        price = Price.objects.filter(
            product__code="aurius-plugin", currency="USD", is_active=True
        ).first()
        if account is None or staff is None or price is None:
            raise CommandError("Run demo_data and demo_billing first.")
        if RefundRequest.objects.filter(account=account).exists():
            self.stdout.write("Demo refund ready (0 new).")
            return
        owner = account.memberships.get(user__email="owner@acme.example").user
        bought = timezone.now() - timedelta(days=5)
        with transaction.atomic():
            order = purchase_place(
                actor=owner, account=account, items=[{"price": price.pk}], now=bought
            )
            payment_record_manual(
                actor=staff, order=order, reference="DEMO-WIRE-PLUGIN", now=bought
            )
            request = services.refund_request_submit(
                actor=owner,
                account=account,
                line_ids=[line.pk for line in order.lines.all()],
                reason="no_longer_needed",
                payout_method="credit",
                text="We bought the plugin for a project that was cancelled; the key was never used.",
            )
            for line in request.lines.all():
                services.refund_line_decide(actor=staff, line=line, approve=True)
            services.refund_request_decide(actor=staff, request=request)
        request.refresh_from_db()
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo refund ready: {request.number} ({request.get_state_display()})."
            )
        )
