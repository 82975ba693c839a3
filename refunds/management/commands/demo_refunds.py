"""Load Acme's demo refunds, one in each state a customer or reviewer meets: received,
in review, waiting for the customer's answer, refunded (paid by transfer), credited, and
denied. Each is a purchase of its own, bought after Acme's last plan renewal and before
the marketplace's payments (demo_billing, demo_marketplace), so invoice numbers follow
their dates. And a refund request by mail from a stranger, in triage. Idempotent."""

from datetime import timedelta
from email.message import EmailMessage
from email.utils import format_datetime

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from accounts.models import Account, User
from billing.models import Order, Price
from billing.services import payment_record_manual, purchase_place
from inbox.models import InboundMail
from inbox.services import mail_receive
from refunds import services
from refunds.models import RefundPayout, RefundRequest

# product, bought (days ago), asked (days ago), reason, payout, what they wrote, then
# what staff did: (days ago, step) with step "take", "ask", "approve", "deny" or "pay"
REFUNDS = [
    (
        "migration",
        20,
        18,
        "not_as_advertised",
        "original",
        "The migration service did not import our custom fields.",
        [(17, "take"), (16, "deny")],
    ),
    (
        "aurius-plugin",
        16,
        14,
        "billing_error",
        "original",
        "We bought the plugin twice by mistake; this key was never used.",
        [(13, "take"), (12, "approve"), (10, "pay")],
    ),
    (
        "wordpress-portal",
        12,
        11,
        "no_longer_needed",
        "credit",
        "We bought the portal for a project that was cancelled; it was never installed.",
        [(11, "approve")],
    ),
    (
        "credits-100k",
        9,
        6,
        "no_longer_needed",
        "original",
        "Our campaign was cancelled and these credits will not be used.",
        [(5, "ask")],
    ),
    (
        "aurius-plugin",
        7,
        2,
        "unresolved_bug",
        "original",
        "The plugin's suggestions never load in the deal view.",
        [(1, "take")],
    ),
    (
        "storage-50gb",
        5,
        0,
        "no_longer_needed",
        "credit",
        "We moved our attachments elsewhere; please take the extra storage back.",
        [],
    ),
]
QUESTION = "Were any of the 100,000 credits used? Please send the campaign's cancellation notice."
DENIAL = (
    "Custom fields were not in the migration's scope (order notes); we will import them "
    "under a new order at no charge."
)


class Command(BaseCommand):
    help = "Create Acme's demo refunds, one in each state (safe to run again)."

    def handle(self, *args, **options):
        if not settings.DEBUG:
            raise CommandError("Refusing to load the demo refunds with DEBUG off.")
        account = Account.objects.filter(name="Acme Corporation").first()
        staff = User.objects.filter(is_superuser=True).order_by("pk").first()
        reviewer = User.objects.filter(email="billing.reviewer@example.com").first() or staff
        if account is None or staff is None or not Price.objects.exists():
            raise CommandError("Run demo_data and demo_billing first.")
        created = self._mail_in_triage()
        if RefundRequest.objects.filter(account=account).exists():
            self.stdout.write(self.style.SUCCESS(f"Demo refunds ready ({created} new objects)."))
            return
        owner = account.memberships.get(user__email="owner@acme.example").user
        now = timezone.now()
        steps = []
        for number, (code, bought, asked, reason, payout, text, actions) in enumerate(REFUNDS, 1):
            item = {"code": code, "number": number}
            steps.append((now - timedelta(days=bought, hours=2), "buy", item))
            steps.append((now - timedelta(days=asked, hours=1), "submit", item))
            item.update(reason=reason, payout=payout, text=text)
            for days_ago, action in actions:
                steps.append((now - timedelta(days=days_ago), action, item))
        # One timeline: purchases and decisions in date order, so are their documents.
        steps.sort(key=lambda step: step[0])
        with transaction.atomic():
            for when, action, item in steps:
                self._step(action, item, when=when, owner=owner, staff=staff, reviewer=reviewer)
        states = ", ".join(
            f"{r.number} {r.get_state_display().lower()}"
            for r in RefundRequest.objects.filter(account=account).order_by("pk")
        )
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo refunds ready ({created + len(REFUNDS)} new objects): {states}."
            )
        )

    def _mail_in_triage(self) -> int:
        """A refund request by mail from someone with no login: staff sort it out."""
        message = EmailMessage()
        message["From"] = "Pat Partner <pat@acme-partner.example>"
        message["To"] = settings.VENDOR_BILLING_EMAIL
        message["Subject"] = "Refund for Acme's storage add-on"
        message["Message-ID"] = "<demo-triage-1@acme-partner.example>"
        message["Date"] = format_datetime(timezone.now() - timedelta(hours=3))
        message.set_content(
            "Hello,\n\nI handle Acme Corporation's purchasing. Please refund the extra "
            "storage they bought last week to our card.\n\nPat"
        )
        mail, new = mail_receive(
            raw=message.as_bytes(),
            source="demo",
            mailbox=InboundMail.Mailbox.REFUNDS,
            now=timezone.now() - timedelta(hours=3),
        )
        if mail.status != InboundMail.Status.TRIAGE:
            raise CommandError(f"The demo mail should be in triage, it is {mail.status}.")
        return int(new)

    def _step(self, action, item, *, when, owner, staff, reviewer):
        account = owner.memberships.get(account__name="Acme Corporation").account
        if action == "buy":
            price = Price.objects.get(product__code=item["code"], currency="USD", is_active=True)
            order = purchase_place(
                actor=owner, account=account, items=[{"price": price.pk}], now=when
            )
            if order.status != Order.Status.PAID:  # account credit may have paid it
                payment_record_manual(
                    actor=staff, order=order, reference=f"DEMO-WIRE-R{item['number']}", now=when
                )
            item["order"] = order
            return
        if action == "submit":
            item["request"] = services.refund_request_submit(
                actor=owner,
                account=account,
                line_ids=[line.pk for line in item["order"].lines.all()],
                reason=item["reason"],
                payout_method=item["payout"],
                text=item["text"],
                now=when,
            )
            return
        request = RefundRequest.objects.get(pk=item["request"].pk)
        if action == "take":
            services.refund_request_take(actor=reviewer, request=request, now=when)
        elif action == "ask":
            services.refund_request_ask_info(
                actor=reviewer, request=request, question=QUESTION, now=when
            )
        elif action in ("approve", "deny"):
            for line in request.lines.all():
                services.refund_line_decide(
                    actor=reviewer,
                    line=line,
                    approve=action == "approve",
                    reason="" if action == "approve" else DENIAL,
                    now=when,
                )
            services.refund_request_decide(actor=reviewer, request=request, now=when)
        elif action == "pay":
            for payout in request.payouts.filter(
                method=RefundPayout.Method.MANUAL, status=RefundPayout.Status.PENDING
            ):
                services.refund_payout_record_manual(
                    actor=reviewer, payout=payout, reference=f"DEMO-PAYOUT-{request.pk}", now=when
                )
