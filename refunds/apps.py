from django.apps import AppConfig


class RefundsConfig(AppConfig):
    name = "refunds"
    verbose_name = "Refunds"

    def ready(self):
        from billing.hooks import PAGE_EXTENSIONS

        from . import webhooks  # noqa: F401  (Stripe's refund events)
        from .mail import webhook  # noqa: F401  (anymail's inbound mail signal)
        from .services import billing_page_sections

        if billing_page_sections not in PAGE_EXTENSIONS:
            PAGE_EXTENSIONS.append(billing_page_sections)
