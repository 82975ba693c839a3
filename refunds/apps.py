from django.apps import AppConfig


class RefundsConfig(AppConfig):
    name = "refunds"
    verbose_name = "Refunds"

    def ready(self):
        from . import webhooks  # noqa: F401  (registers the Stripe refund receivers)
