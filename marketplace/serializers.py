"""Input and output shapes of the marketplace API, customer and developer."""

from datetime import date, timedelta

from rest_framework import serializers

from . import selectors
from .models import App, Installation, Plan


def last_paid_day(inst) -> date | None:
    sub = inst.subscription if inst.subscription_id else None
    if sub is None or sub.status in ("trialing", "pending"):
        return None
    return sub.last_day


class PlanOut(serializers.ModelSerializer):
    price = serializers.SerializerMethodField()
    refund_window_days = serializers.SerializerMethodField()
    refund_terms = serializers.SerializerMethodField()
    amount = serializers.DecimalField(max_digits=14, decimal_places=2, coerce_to_string=True)

    class Meta:
        model = Plan
        fields = [
            "code",
            "name",
            "pricing_model",
            "currency",
            "amount",
            "interval",
            "scheme",
            "trial_days",
            "refund_days",
            "unit_name",
            "external_url",
            "requires_edition",
            "price",
            "refund_terms",
            "refund_window_days",
        ]

    def get_price(self, plan) -> str:
        return selectors.plan_price(plan)

    def get_refund_window_days(self, plan) -> int | None:
        return selectors.refund_window_days(plan)

    def get_refund_terms(self, plan) -> str:
        return selectors.plan_terms(plan)


class AppOut(serializers.ModelSerializer):
    developer = serializers.CharField(source="developer.name")
    pricing_model = serializers.SerializerMethodField()
    trial_days = serializers.SerializerMethodField()
    refund_days = serializers.SerializerMethodField()
    # Built once for the whole list (a serializer made per app costs more than the query).
    plans = PlanOut(many=True, source="active_plans")

    class Meta:
        model = App
        fields = [
            "slug",
            "name",
            "summary",
            "developer",
            "category",
            "pricing_model",
            "trial_days",
            "refund_days",
            "scopes",
            "plans",
        ]

    def get_pricing_model(self, app) -> str | None:
        plan = selectors.primary_plan(app)
        return plan.pricing_model if plan else None

    def get_trial_days(self, app) -> int:
        plan = selectors.primary_plan(app)
        return plan.trial_days if plan else 0

    def get_refund_days(self, app) -> int | None:
        """The first plan's refund window in days (onecloud §4); 0 after a free trial."""
        plan = selectors.primary_plan(app)
        return selectors.refund_window_days(plan) if plan else None


class AppDetailOut(AppOut):
    description = serializers.CharField()
    developer_support = serializers.EmailField(source="developer.support_email")

    class Meta(AppOut.Meta):
        fields = [
            *AppOut.Meta.fields,
            "description",
            "terms_url",
            "privacy_url",
            "developer_support",
        ]


class InstallationOut(serializers.ModelSerializer):
    app = serializers.CharField(source="app.slug")
    app_name = serializers.CharField(source="app.name")
    plan = serializers.CharField(source="plan.code")
    pricing_model = serializers.CharField(source="plan.pricing_model")
    pending_plan = serializers.SerializerMethodField()
    current_period_end = serializers.SerializerMethodField(
        help_text="The first day of the next period (the last paid day is `paid_until`)."
    )
    paid_until = serializers.SerializerMethodField(help_text="The last day paid for.")
    trial_last_day = serializers.SerializerMethodField(help_text="The trial's last free day.")
    trial_end = serializers.DateField(
        allow_null=True, help_text="The first day no longer free (the day after the trial)."
    )
    cancel_at_period_end = serializers.SerializerMethodField()
    usage = serializers.SerializerMethodField()
    order = serializers.SerializerMethodField()

    class Meta:
        model = Installation
        fields = [
            "id",
            "app",
            "app_name",
            "plan",
            "pricing_model",
            "pending_plan",
            "state",
            "scopes",
            "trial_end",
            "trial_last_day",
            "current_period_end",
            "paid_until",
            "cancel_at_period_end",
            "usage",
            "order",
            "installed_at",
            "ended_at",
        ]

    def get_pending_plan(self, inst) -> str | None:
        return inst.pending_plan.code if inst.pending_plan_id else None

    def get_current_period_end(self, inst) -> date | None:
        return inst.subscription.current_period_end if inst.subscription_id else None

    def get_paid_until(self, inst) -> date | None:
        return last_paid_day(inst)

    def get_trial_last_day(self, inst) -> date | None:
        return inst.trial_end - timedelta(days=1) if inst.trial_end else None

    def get_cancel_at_period_end(self, inst) -> bool:
        return bool(inst.subscription_id and inst.subscription.cancel_at_period_end)

    def get_usage(self, inst) -> dict | None:
        if inst.plan.pricing_model != Plan.Model.USAGE:
            return None
        return {
            "month": inst.usage_month,
            "units": inst.usage_units,
            "amount": f"{inst.usage_amount:.2f}",
            "cap": f"{inst.usage_cap:.2f}" if inst.usage_cap is not None else None,
            "currency": inst.plan.currency,
        }

    def get_order(self, inst) -> str | None:
        return inst.order.number if inst.order_id else None


class InstallIn(serializers.Serializer):
    app = serializers.CharField(max_length=60, help_text="The app's slug (or its id).")
    plan = serializers.CharField(
        max_length=60,
        required=False,
        help_text="The plan's code (or its id); the app's first plan if left out.",
    )
    quantity = serializers.IntegerField(required=False, default=1, min_value=1, max_value=10_000)
    usage_cap = serializers.DecimalField(
        max_digits=12, decimal_places=2, required=False, allow_null=True, min_value=0
    )


class InstallationChangeIn(serializers.Serializer):
    plan = serializers.SlugField(required=False)
    usage_cap = serializers.DecimalField(
        max_digits=12, decimal_places=2, required=False, allow_null=True, min_value=0
    )


class OutcomeOut(serializers.Serializer):
    installation = InstallationOut()
    message = serializers.CharField()
    redirect_url = serializers.CharField(allow_blank=True)
    refund = serializers.DictField(allow_null=True)


class AppUsageIn(serializers.Serializer):
    quantity = serializers.IntegerField(min_value=1, max_value=1_000_000)
    used_on = serializers.DateField(
        required=False, help_text="The customer's local date; today if left out."
    )


class AppUsageRecordIn(serializers.Serializer):
    idempotency_key = serializers.CharField(max_length=100)
    quantity = serializers.IntegerField(min_value=1, max_value=1_000_000)
    used_on = serializers.DateField(required=False)


class AppUsageBatchIn(serializers.Serializer):
    records = AppUsageRecordIn(many=True, help_text="1 to 1,000 records, each with its own key.")


class AppUsageOut(serializers.Serializer):
    id = serializers.IntegerField()
    installation = serializers.IntegerField(source="installation_id")
    idempotency_key = serializers.CharField()
    quantity = serializers.IntegerField()
    amount = serializers.DecimalField(max_digits=14, decimal_places=4, coerce_to_string=True)
    used_on = serializers.DateField()
    created_at = serializers.DateTimeField()


class AppUsageBatchOut(serializers.Serializer):
    created = serializers.IntegerField(
        help_text="How many records are new (the rest were replays)."
    )
    records = AppUsageOut(many=True)


class AppLicenceOut(serializers.Serializer):
    """What a developer's app reads to decide whether it may run for an account."""

    id = serializers.IntegerField()
    account = serializers.IntegerField(source="account_id")
    state = serializers.ChoiceField(choices=Installation.State.choices)
    active = serializers.SerializerMethodField(
        help_text="Whether the app may run for the account now (live, and what it needs held)."
    )
    reason = serializers.SerializerMethodField(help_text="Why it may not run, if it may not.")
    plan = serializers.SerializerMethodField()
    scopes = serializers.ListField(child=serializers.CharField())
    trial_end = serializers.DateField(
        allow_null=True, help_text="The first day no longer free (the day after the trial)."
    )
    trial_last_day = serializers.SerializerMethodField(help_text="The trial's last free day.")
    current_period_end = serializers.SerializerMethodField(
        help_text="The first day of the next period."
    )
    paid_until = serializers.SerializerMethodField(help_text="The last day paid for.")
    cancel_at_period_end = serializers.SerializerMethodField()
    usage = serializers.SerializerMethodField()

    def get_plan(self, inst) -> dict:
        return {
            "code": inst.plan.code,
            "name": inst.plan.name,
            "pricing_model": inst.plan.pricing_model,
        }

    def get_active(self, inst) -> bool:
        return selectors.installation_works(inst) is None

    def get_reason(self, inst) -> str | None:
        return selectors.installation_works(inst)

    get_current_period_end = InstallationOut.get_current_period_end
    get_paid_until = InstallationOut.get_paid_until
    get_trial_last_day = InstallationOut.get_trial_last_day
    get_cancel_at_period_end = InstallationOut.get_cancel_at_period_end
    get_usage = InstallationOut.get_usage
