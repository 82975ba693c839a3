from django.apps import AppConfig


class RefundsConfig(AppConfig):
    name = "refunds"
    verbose_name = "Refunds"

    def ready(self):
        from billing.hooks import LINE_HOLDS, PAGE_EXTENSIONS, REFUND_ADVISOR
        from inbox.handlers import register

        from . import webhooks  # noqa: F401  (Stripe's refund events)
        from .mail import intake
        from .services import app_refund_terms, billing_page_sections, decisions_for, lines_held

        if billing_page_sections not in PAGE_EXTENSIONS:
            PAGE_EXTENSIONS.append(billing_page_sections)
        if lines_held not in LINE_HOLDS:
            LINE_HOLDS.append(lines_held)
        register(intake.handler())  # the billing mailbox's mail (inbox)
        REFUND_ADVISOR["terms"] = app_refund_terms
        REFUND_ADVISOR["outlook"] = lambda account, lines, on, **kw: decisions_for(
            account=account, lines=lines, on=on, **kw
        )
