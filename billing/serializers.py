from rest_framework import serializers

from .models import LedgerEntry, LineRefund, Order, OrderLine, Subscription


def money(value, currency) -> dict:
    return {"amount": f"{value:.2f}", "currency": currency}


class SubscriptionOut(serializers.ModelSerializer):
    pending_plan = serializers.CharField(
        source="pending_price.product.name",
        default=None,
        allow_null=True,
        read_only=True,
        help_text="The plan a downgrade moves to at the next cycle; null when none.",
    )
    product = serializers.CharField(source="price.product.name")
    unit_price = serializers.SerializerMethodField()
    scheme = serializers.CharField(source="price.scheme")
    interval = serializers.CharField(source="price.interval")

    class Meta:
        model = Subscription
        fields = [
            "id",
            "product",
            "unit_price",
            "scheme",
            "interval",
            "quantity",
            "status",
            "current_period_start",
            "current_period_end",
            "cancel_at_period_end",
            "pending_plan",
        ]

    def get_unit_price(self, sub) -> dict:
        return money(sub.price.amount, sub.price.currency)


class SeatChangeIn(serializers.Serializer):
    quantity = serializers.IntegerField(min_value=1, max_value=100_000)
    expected_amount = serializers.DecimalField(
        max_digits=14,
        decimal_places=2,
        required=False,
        help_text="The preview's amount: the change is refused if the price moved since.",
    )


class QuoteOut(serializers.Serializer):
    kind = serializers.CharField()
    current = serializers.IntegerField()
    new = serializers.IntegerField()
    amount = serializers.SerializerMethodField()
    tax = serializers.SerializerMethodField(help_text="The tax on `amount` (billing country).")
    total = serializers.SerializerMethodField(help_text="`amount` with its tax.")
    period_start = serializers.DateField()
    period_end = serializers.DateField()
    explanation = serializers.SerializerMethodField()

    def get_amount(self, quote) -> dict:
        return money(quote.amount.amount, quote.amount.currency)

    def get_tax(self, quote) -> dict:
        tax = quote.tax or type(quote.amount).zero(quote.amount.currency)
        return money(tax.amount, tax.currency)

    def get_total(self, quote) -> dict:
        return money(quote.total.amount, quote.total.currency)

    def get_explanation(self, quote) -> str:
        return quote.explain()


class LineRefundOut(serializers.ModelSerializer):
    amount = serializers.DecimalField(max_digits=14, decimal_places=2)
    refunded_at = serializers.DateTimeField(source="created_at")
    reference = serializers.CharField(help_text="The refund request it came back by.")

    class Meta:
        model = LineRefund
        fields = ["amount", "currency", "method", "reference", "refunded_at"]


class OrderLineOut(serializers.ModelSerializer):
    amount = serializers.DecimalField(max_digits=14, decimal_places=2)
    refunded = serializers.DecimalField(
        max_digits=14, decimal_places=2, help_text="What came back on it so far."
    )
    refunds = LineRefundOut(many=True, help_text="Each amount that came back on it, oldest first.")

    class Meta:
        model = OrderLine
        fields = [
            "id",
            "kind",
            "description",
            "quantity",
            "amount",
            "period_start",
            "period_end",
            "first_purchase",
            "units",
            "units_used",
            "activated_at",
            "delivered_at",
            "delivery",
            "units_refunded",
            "taken_back_at",
            "refunded",
            "refunds",
        ]


class OrderOut(serializers.ModelSerializer):
    lines = OrderLineOut(many=True)
    total = serializers.DecimalField(max_digits=14, decimal_places=2)
    credit_applied = serializers.DecimalField(max_digits=14, decimal_places=2)
    amount_due = serializers.DecimalField(max_digits=14, decimal_places=2)
    refunded = serializers.DecimalField(
        max_digits=14, decimal_places=2, help_text="What came back on its lines so far."
    )

    class Meta:
        model = Order
        fields = [
            "id",
            "number",
            "status",
            "currency",
            "total",
            "credit_applied",
            "amount_due",
            "refunded",
            "created_at",
            "paid_at",
            "lines",
        ]


class LedgerEntryOut(serializers.ModelSerializer):
    amount = serializers.DecimalField(max_digits=14, decimal_places=2)
    balance_after = serializers.DecimalField(max_digits=14, decimal_places=2)

    class Meta:
        model = LedgerEntry
        fields = [
            "sequence",
            "created_at",
            "kind",
            "description",
            "amount",
            "balance_after",
            "currency",
        ]


class MoneyOut(serializers.Serializer):
    amount = serializers.CharField()
    currency = serializers.CharField()


class BillingOverviewOut(serializers.Serializer):
    subscription = SubscriptionOut(allow_null=True)
    seats_paid = serializers.IntegerField()
    credit_balance = MoneyOut()


class SeatChangeOut(serializers.Serializer):
    subscription = SubscriptionOut()
    quote = QuoteOut()
    order = OrderOut(allow_null=True)


class LedgerOut(serializers.Serializer):
    balance = MoneyOut()
    entries = LedgerEntryOut(many=True)


class PlanChangeIn(serializers.Serializer):
    price = serializers.IntegerField(min_value=1, help_text="The id of the plan's price.")
    expected_amount = serializers.DecimalField(
        max_digits=14,
        decimal_places=2,
        required=False,
        help_text="The preview's amount: the change is refused if it moved since.",
    )


class PlanQuoteOut(serializers.Serializer):
    kind = serializers.CharField()
    current = serializers.CharField()
    new = serializers.CharField()
    amount = MoneyOut()
    period_start = serializers.DateField()
    period_end = serializers.DateField()
    explanation = serializers.CharField()
    stops = serializers.ListField(
        child=serializers.CharField(), help_text="What stops working on the new plan's edition."
    )
    tax = MoneyOut(help_text="The tax on `amount` (billing country).")


class PlanChangeOut(serializers.Serializer):
    subscription = SubscriptionOut()
    quote = PlanQuoteOut()
    order = OrderOut(allow_null=True)


class CancelIn(serializers.Serializer):
    cancel = serializers.BooleanField(
        help_text="true: end at the period's end; false: keep renewing."
    )


def plan_quote_data(quote) -> dict:
    return {
        "kind": quote.kind,
        "current": quote.current,
        "new": quote.new,
        "amount": money(quote.amount.amount, quote.amount.currency),
        "period_start": quote.period_start,
        "period_end": quote.period_end,
        "explanation": quote.explain(),
        "stops": list(quote.stops),
        "tax": money(quote.tax.amount if quote.tax else 0, quote.amount.currency),
    }


class StartIn(serializers.Serializer):
    price = serializers.IntegerField(min_value=1, help_text="The id of the plan's price.")
    quantity = serializers.IntegerField(min_value=1, max_value=100_000)
    trial = serializers.BooleanField(default=False)


class StartOut(serializers.Serializer):
    subscription = SubscriptionOut()
    order = OrderOut(allow_null=True)
