from django.apps import AppConfig


class SupportConfig(AppConfig):
    name = "support"
    verbose_name = "Support"

    def ready(self):
        from billing.hooks import ORDER_CANCELLED_HOOKS, ORDER_PAID_HOOKS
        from inbox.handlers import register

        from . import mail
        from .services import on_order_cancelled, on_order_paid

        register(mail.handler())  # the support mailbox's mail (inbox)

        if on_order_paid not in ORDER_PAID_HOOKS:
            ORDER_PAID_HOOKS.append(on_order_paid)
        if on_order_cancelled not in ORDER_CANCELLED_HOOKS:
            ORDER_CANCELLED_HOOKS.append(on_order_cancelled)
