from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing"

    def ready(self):
        from accounts.services import ACTIVATION_GUARDS, SEAT_GUARDS, SEATS_PAID_OWNERS

        from .selectors import (
            plan_keeps_licence_screen,
            seats_paid_owned_by_plan,
            support_seat_refusal,
        )

        if seats_paid_owned_by_plan not in SEATS_PAID_OWNERS:
            SEATS_PAID_OWNERS.append(seats_paid_owned_by_plan)
        if plan_keeps_licence_screen not in ACTIVATION_GUARDS:
            ACTIVATION_GUARDS.append(plan_keeps_licence_screen)
        if support_seat_refusal not in SEAT_GUARDS:
            SEAT_GUARDS.append(support_seat_refusal)

        from . import webhooks  # noqa: F401  (connects the Stripe webhook receivers)
        from .gateways.stripe import configure

        configure()
