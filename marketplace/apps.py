from django.apps import AppConfig


class MarketplaceConfig(AppConfig):
    name = "marketplace"
    verbose_name = "Marketplace"

    def ready(self):
        from billing.hooks import (
            LINE_REFUNDED_HOOKS,
            ORDER_CANCELLED_HOOKS,
            ORDER_PAID_HOOKS,
            SUBSCRIPTION_MOVED_HOOKS,
        )

        from . import services

        for hooks, hook in (
            (ORDER_PAID_HOOKS, services.on_order_paid),
            (ORDER_CANCELLED_HOOKS, services.on_order_cancelled),
            (SUBSCRIPTION_MOVED_HOOKS, services.on_subscription_moved),
            (LINE_REFUNDED_HOOKS, services.on_line_refunded),
        ):
            if hook not in hooks:
                hooks.append(hook)
