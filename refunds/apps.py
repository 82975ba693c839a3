from django.apps import AppConfig


class RefundsConfig(AppConfig):
    name = "refunds"
    verbose_name = "Refunds"

    def ready(self):
        from billing.hooks import LINE_HOLDS, PAGE_EXTENSIONS, REFUND_ADVISOR

        from . import webhooks  # noqa: F401  (Stripe's refund events)
        from .mail import webhook  # noqa: F401  (anymail's inbound mail signal)
        from .services import app_refund_terms, billing_page_sections, decisions_for, lines_held

        if billing_page_sections not in PAGE_EXTENSIONS:
            PAGE_EXTENSIONS.append(billing_page_sections)
        if lines_held not in LINE_HOLDS:
            LINE_HOLDS.append(lines_held)
        REFUND_ADVISOR["terms"] = app_refund_terms
        REFUND_ADVISOR["outlook"] = lambda account, lines, on, **kw: decisions_for(
            account=account, lines=lines, on=on, **kw
        )
