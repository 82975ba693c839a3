from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing"

    def ready(self):
        from accounts.services import SEATS_PAID_OWNERS

        from .services import seats_paid_owned_by_plan

        if seats_paid_owned_by_plan not in SEATS_PAID_OWNERS:
            SEATS_PAID_OWNERS.append(seats_paid_owned_by_plan)
