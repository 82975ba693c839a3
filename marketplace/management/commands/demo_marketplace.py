"""Load the demo marketplace: developers, apps of every pricing model, and the demo owner's
installations (a trial, a paid subscription inside its 3 days, a usage app with two months
charged). Runs after demo_refunds: its payments are Acme's latest, so invoice numbers
follow their dates. Idempotent."""

from datetime import datetime, time, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from accounts.models import Account, User
from billing.models import Order, Product
from billing.selectors import account_today
from billing.services import payment_record_manual, usage_bill
from marketplace import services
from marketplace.models import App, Developer, Installation, Plan

DEVELOPERS = [
    ("aurora-labs", "Aurora Labs", "help@aurora.example", "refunds@aurora.example", "0.80"),
    (
        "brightwire",
        "Brightwire",
        "support@brightwire.example",
        "billing@brightwire.example",
        "0.75",
    ),
    (
        "chimp-connect",
        "Chimp Connect Ltd",
        "hello@chimpconnect.example",
        "https://chimpconnect.example/refunds",
        "0.85",
    ),
    ("1crm-systems", "1CRM Systems Corp.", "support@1crm.example", "billing@1crm.example", "1.00"),
]

# slug, name, developer, category, summary, scopes, [plans: code, name, model, amount,
# interval, scheme, trial_days, refund_days, unit, default_cap, external_url, requires]
APPS = [
    (
        "aurora-assistant",
        "Aurora AI Assistant",
        "aurora-labs",
        "ai",
        "Drafts replies and summarises every deal's history.",
        ["contacts:read", "deals:read", "email:send"],
        [("monthly", "Monthly", "subscription", "19", "month", "flat", 14, None, "", None, "", "")],
    ),
    (
        "deal-digest",
        "Deal Digest",
        "brightwire",
        "sales",
        "A morning mail of the deals that moved and the ones that stalled.",
        ["deals:read"],
        [("monthly", "Monthly", "subscription", "12", "month", "flat", 0, None, "", None, "", "")],
    ),
    (
        "sms-bridge",
        "SMS Bridge",
        "brightwire",
        "communication",
        "Send and receive text messages from any contact's page.",
        ["contacts:read", "messages:write"],
        [
            (
                "per-message",
                "Pay per message",
                "usage",
                "0.05",
                "",
                "flat",
                0,
                None,
                "message",
                "50",
                "",
                "",
            )
        ],
    ),
    (
        "org-chart-pro",
        "Org Chart Pro",
        "aurora-labs",
        "productivity",
        "Draw the organisation chart of any account from its contacts.",
        ["contacts:read"],
        [("lifetime", "Lifetime licence", "one_time", "49", "", "flat", 0, None, "", None, "", "")],
    ),
    (
        "mailchimp-sync",
        "Chimp Sync",
        "chimp-connect",
        "marketing",
        "Two-way sync of contacts and campaign results with your mailing lists.",
        ["contacts:read", "contacts:write"],
        [
            (
                "pro",
                "Pro (billed by Chimp Connect)",
                "external",
                "0",
                "",
                "flat",
                0,
                None,
                "",
                None,
                "https://chimpconnect.example/signup",
                "",
            )
        ],
    ),
    (
        "pipeline-insights",
        "Pipeline Insights",
        "aurora-labs",
        "analytics",
        "Forecasts and win-rate reports per seller.",
        ["deals:read", "users:read"],
        [
            (
                "yearly",
                "Yearly, per seat",
                "subscription",
                "24",
                "year",
                "per_seat",
                0,
                14,
                "",
                None,
                "",
                "",
            ),
            (
                "monthly",
                "Monthly, per seat",
                "subscription",
                "3",
                "month",
                "per_seat",
                0,
                14,
                "",
                None,
                "",
                "",
            ),
        ],
    ),
    (
        "calendar-link",
        "Calendar Link",
        "brightwire",
        "productivity",
        "Share a booking link; meetings land on the contact's timeline.",
        ["calendar:write", "contacts:read"],
        [("free", "Free", "free", "0", "", "flat", 0, None, "", None, "", "")],
    ),
    (
        "meeting-notes",
        "Meeting Notes AI",
        "aurora-labs",
        "ai",
        "Transcribes calls and files the notes on the deal.",
        ["deals:write", "calls:read"],
        [
            ("monthly", "Monthly", "subscription", "9", "month", "flat", 7, None, "", None, "", ""),
            ("yearly", "Yearly", "subscription", "90", "year", "flat", 7, None, "", None, "", ""),
        ],
    ),
    (
        "ai-actions",
        "AI Actions",
        "aurora-labs",
        "ai",
        "Automations that run an AI step on each record; billed per action.",
        ["deals:write", "contacts:write"],
        [
            (
                "per-action",
                "Pay per action",
                "usage",
                "0.02",
                "",
                "flat",
                0,
                None,
                "action",
                "20",
                "",
                "",
            )
        ],
    ),
    (
        "wordpress-portal",
        "1CRM Customer Connection Portal for WordPress",
        "1crm-systems",
        "integrations",
        "Let your customers see their cases and invoices on your own WordPress site.",
        ["contacts:read", "cases:read"],
        [
            (
                "download",
                "Free download (its licence, 295.00 USD, under Billing > Buy)",
                "free",
                "0",
                "",
                "flat",
                0,
                None,
                "",
                None,
                "",
                "professional",
            )
        ],
        "A WordPress plugin for your own site. The download is free, but it works only with "
        "1CRM Professional or Enterprise Edition and its own licence: buy the "
        "licence under Account Settings > Billing > Buy.",
    ),
]


class Command(BaseCommand):
    help = "Create the demo marketplace (safe to run again)."

    def handle(self, *args, **options):
        if not settings.DEBUG:
            raise CommandError("Refusing to load the demo marketplace with DEBUG off.")
        staff = User.objects.filter(is_superuser=True).order_by("pk").first()
        if staff is None:
            raise CommandError("Run demo_data first: the marketplace needs a staff user.")
        created = 0
        with transaction.atomic():
            developers = {}
            for slug, name, support, refund, share in DEVELOPERS:
                developers[slug], new = Developer.objects.get_or_create(
                    slug=slug,
                    defaults={
                        "name": name,
                        "support_email": support,
                        "refund_contact": refund,
                        "revenue_share": Decimal(share),
                    },
                )
                created += new
            for slug, name, dev, category, summary, scopes, plans, *about in APPS:
                app, new_app = App.objects.get_or_create(
                    slug=slug,
                    defaults={
                        "name": name,
                        "developer": developers[dev],
                        "category": category,
                        "summary": summary,
                        "description": about[0] if about else "",
                        "scopes": scopes,
                        "terms_url": f"https://{dev}.example/terms",
                        "privacy_url": f"https://{dev}.example/privacy",
                    },
                )
                for position, (
                    code,
                    pname,
                    model,
                    amount,
                    interval,
                    scheme,
                    trial,
                    refund_days,
                    unit,
                    cap,
                    url,
                    requires,
                ) in enumerate(plans):
                    plan, new = Plan.objects.get_or_create(
                        app=app,
                        code=code,
                        defaults={
                            "name": pname,
                            "pricing_model": model,
                            "amount": Decimal(amount),
                            "interval": interval,
                            "scheme": scheme,
                            "trial_days": trial,
                            "refund_days": refund_days,
                            "unit_name": unit,
                            "default_cap": Decimal(cap) if cap else None,
                            "external_url": url,
                            "external_refund_contact": developers[dev].refund_contact
                            if model == "external"
                            else "",
                            "requires_edition": requires,
                            "position": position,
                        },
                    )
                    if new:
                        created += 1
                        services.plan_product_sync(actor=staff, plan=plan)
                created += new_app
                if new_app:
                    services.app_set_status(actor=staff, app=app, status=App.Status.IN_REVIEW)
                    services.app_set_status(actor=staff, app=app, status=App.Status.PUBLISHED)
                    services.app_api_key_rotate(actor=staff, app=app)
            # 1CRM terms: the WordPress portal works only with its own licence too.
            Plan.objects.filter(app__slug="wordpress-portal").update(
                requires_product=Product.objects.filter(code="wordpress-portal").first()
            )
            created += self._installations(staff)
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo marketplace ready ({created} new objects; {App.objects.count()} apps)."
            )
        )

    def _installations(self, staff) -> int:
        account = Account.objects.filter(name="Acme Corporation").first()
        if account is None or Installation.objects.filter(account=account).exists():
            return 0
        owner = account.memberships.get(user__email="owner@acme.example").user
        apps = {app.slug: app for app in App.objects.all()}

        def install(slug, plan_code, **kw):
            app = apps[slug]
            return services.installation_install(
                actor=owner, account=account, app=app, plan=app.plans.get(code=plan_code), **kw
            )

        now = timezone.now()
        # A usage app with charges in the two months before this one, billed in one
        # order two days ago (each month its own line), and some use this month.
        billed_at = now - timedelta(days=2)
        month = account_today(account, billed_at).replace(day=1)
        usage = install("sms-bridge", "per-message", now=now - timedelta(days=70))
        inst = usage.installation
        for days_before, qty in ((55, 120), (50, 80), (20, 200), (10, 40)):
            services.usage_report(
                app=inst.app,
                installation_id=inst.pk,
                quantity=qty,
                idempotency_key=f"demo-{days_before}",
                now=timezone.make_aware(
                    datetime.combine(month - timedelta(days=days_before), time(12)),
                    account.tzinfo,
                ),
            )
        order = usage_bill(account=account, now=billed_at)
        if order is not None and order.status != Order.Status.PAID:
            payment_record_manual(
                actor=staff, order=order, reference=f"DEMO-USAGE-{order.pk}", now=billed_at
            )
        install("aurora-assistant", "monthly", now=now - timedelta(days=3))  # a trial
        install("calendar-link", "free", now=now - timedelta(days=3))
        paid = install("deal-digest", "monthly", now=now - timedelta(hours=3))
        if paid.order is not None and paid.order.status != Order.Status.PAID:
            # Paid today: inside its 3 days.
            payment_record_manual(
                actor=staff,
                order=paid.order,
                reference="DEMO-CARD-APP-1",
                now=now - timedelta(hours=2),
            )
        services.usage_report(
            app=inst.app, installation_id=inst.pk, quantity=30, idempotency_key="demo-today"
        )
        return 5
