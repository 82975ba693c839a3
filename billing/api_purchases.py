"""API: the catalogue and purchases, payments, licences and support, credits and usage."""

from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from accounts.api import validated_input
from accounts.pagination import PaginatedView

from . import selectors, services
from .api import BillingView
from .models import Licence, Payment, Product
from .money import Money
from .serializers import OrderLineOut, OrderOut, money


class PriceOut(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    product = serializers.CharField(source="product.name")
    code = serializers.CharField(source="product.code")
    kind = serializers.CharField(source="product.kind")
    edition = serializers.CharField(source="product.edition")
    deployment = serializers.CharField(source="product.deployment")
    units = serializers.IntegerField(source="product.units", allow_null=True)
    amount = serializers.DecimalField(max_digits=14, decimal_places=4)
    currency = serializers.CharField()
    scheme = serializers.CharField()
    interval = serializers.CharField()


class ItemIn(serializers.Serializer):
    price = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
    quantity = serializers.IntegerField(min_value=1, max_value=services.MAX_QUANTITY, default=1)


class PurchaseIn(serializers.Serializer):
    items = ItemIn(many=True, allow_empty=False, max_length=services.MAX_ITEMS)
    expected_total = serializers.DecimalField(
        max_digits=14,
        decimal_places=2,
        required=False,
        help_text="The preview's total: the purchase is refused if it changed since.",
    )


class PurchaseLineOut(serializers.Serializer):
    kind = serializers.CharField()
    description = serializers.CharField()
    quantity = serializers.IntegerField()
    amount = serializers.DecimalField(max_digits=14, decimal_places=2)
    period_start = serializers.DateField(allow_null=True, default=None)
    period_end = serializers.DateField(allow_null=True, default=None)
    units = serializers.IntegerField(allow_null=True, default=None)


class PurchaseQuoteOut(serializers.Serializer):
    lines = PurchaseLineOut(many=True)
    total = serializers.DictField(help_text="Before tax: what `expected_total` repeats.")
    tax = serializers.DictField(help_text="The tax the order is charged (billing country).")
    total_with_tax = serializers.DictField()
    notes = serializers.ListField(child=serializers.CharField())


def _quote_data(quote) -> dict:
    return {
        "lines": [{key: line.get(key) for key in PurchaseLineOut().fields} for line in quote.lines],
        "total": money(quote.total.amount, quote.total.currency),
        "tax": money(quote.tax.amount if quote.tax else 0, quote.total.currency),
        "total_with_tax": money(quote.total_with_tax.amount, quote.total.currency),
        "notes": quote.notes,
    }


class CatalogueView(BillingView):
    @extend_schema(responses=PriceOut(many=True), summary="What the account can buy")
    def get(self, request, account_id):
        return Response(PriceOut(selectors.catalogue(account=self.account), many=True).data)


class PurchasePreviewView(BillingView):
    @extend_schema(
        request=PurchaseIn,
        responses=PurchaseQuoteOut,
        summary="What buying these items would cost, line by line (changes nothing)",
    )
    def post(self, request, account_id):
        data = validated_input(PurchaseIn, request)
        quote = services.purchase_quote(
            account=self.account,
            items=[dict(item) for item in data["items"]],
            today=selectors.account_today(self.account),
        )
        return Response(PurchaseQuoteOut(_quote_data(quote)).data)


class PurchaseView(BillingView):
    @extend_schema(
        request=PurchaseIn,
        responses={201: OrderOut},
        summary="Buy catalogue items: one order, one payment, delivered when paid",
    )
    def post(self, request, account_id):
        data = validated_input(PurchaseIn, request)
        expected = data.get("expected_total")
        order = services.purchase_place(
            actor=request.user,
            account=self.account,
            items=[dict(item) for item in data["items"]],
            expected_total=None if expected is None else Money(expected, self.account.currency),
        )
        return Response(OrderOut(order).data, status=201)


class PaymentOut(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    gateway = serializers.CharField()
    status = serializers.ChoiceField(choices=Payment.Status.choices)
    amount = serializers.DecimalField(max_digits=14, decimal_places=2)
    currency = serializers.CharField()
    refunded = serializers.DecimalField(
        max_digits=14, decimal_places=2, help_text="What was given back on it so far."
    )
    reference = serializers.CharField()
    failure_message = serializers.CharField()
    created_at = serializers.DateTimeField()
    succeeded_at = serializers.DateTimeField(allow_null=True)
    order = serializers.CharField(source="order.number")
    covered = OrderLineOut(source="order.lines", many=True)


class PaymentListView(PaginatedView, BillingView):
    @extend_schema(
        responses=PaymentOut(many=True), summary="Payments, newest first, with what each covered"
    )
    def get(self, request, account_id):
        return self.paginated(
            selectors.payment_list(account=self.account, limit=None, refunds=True), PaymentOut
        )


class LicenceOut(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    product = serializers.CharField(source="product.name")
    users = serializers.IntegerField(source="users_covered")
    renounced = serializers.IntegerField()
    status = serializers.ChoiceField(choices=Licence.Status.choices)
    issued_at = serializers.DateTimeField()
    activated_at = serializers.DateTimeField(allow_null=True)
    key = serializers.SerializerMethodField()

    def get_key(self, licence) -> str | None:
        return selectors.licence_key(licence) if licence.status == "active" else None


class SupportRenewalIn(serializers.Serializer):
    users = serializers.IntegerField(min_value=1, max_value=1_000_000)
    renounce = serializers.BooleanField(
        default=False, help_text="Confirms renouncing the licences above `users` (1CRM terms)."
    )
    expected_amount = serializers.DecimalField(max_digits=14, decimal_places=2, required=False)


class SupportRenewalOut(serializers.Serializer):
    users = serializers.IntegerField()
    licensed = serializers.IntegerField()
    renounced = serializers.IntegerField()
    start = serializers.DateField(source="period.start")
    end = serializers.DateField(source="period.end")
    months_billed = serializers.IntegerField(source="period.months_billed")
    amount = serializers.SerializerMethodField()
    explanation = serializers.SerializerMethodField()

    def get_amount(self, quote) -> dict:
        return money(quote.amount.amount, quote.amount.currency)

    def get_explanation(self, quote) -> str:
        return quote.explain()


class LicencesOut(serializers.Serializer):
    licences = LicenceOut(many=True)
    licensed_users = serializers.IntegerField()
    support_start = serializers.DateField(allow_null=True)
    support_end = serializers.DateField(allow_null=True, help_text="The last day covered.")
    support_active = serializers.BooleanField()
    renewal = SupportRenewalOut(allow_null=True)
    renewal_refusal = serializers.CharField()


class LicencesView(BillingView):
    @extend_schema(
        responses=LicencesOut, summary="Licences with their keys, support dates, renewal quote"
    )
    def get(self, request, account_id):
        view = selectors.on_premise(
            account=self.account, today=selectors.account_today(self.account)
        )
        if view is None:
            raise Http404("This account has no licences.")
        contract = view.contract
        return Response(
            {
                "licences": LicenceOut([row for row, _ in view.licences], many=True).data,
                "licensed_users": view.licensed,
                "support_start": contract.current_period_start if contract else None,
                "support_end": contract.last_day if contract else None,
                "support_active": view.active,
                "renewal": SupportRenewalOut(view.renewal).data if view.renewal else None,
                "renewal_refusal": view.renewal_refusal,
            }
        )


class SupportRenewalPreviewView(BillingView):
    @extend_schema(
        request=SupportRenewalIn,
        responses=SupportRenewalOut,
        summary="What renewing on-premise support would cover and cost (changes nothing)",
    )
    def post(self, request, account_id):
        data = validated_input(SupportRenewalIn, request)
        quote = selectors.support_renewal_quote(
            account=self.account, users=data["users"], today=selectors.account_today(self.account)
        )
        return Response(SupportRenewalOut(quote).data)


class SupportRenewalView(BillingView):
    @extend_schema(
        request=SupportRenewalIn, responses={201: OrderOut}, summary="Renew on-premise support"
    )
    def post(self, request, account_id):
        data = validated_input(SupportRenewalIn, request)
        expected = data.get("expected_amount")
        order = services.support_renew(
            actor=request.user,
            account=self.account,
            users=data["users"],
            renounce=data["renounce"],
            expected_amount=None if expected is None else Money(expected, self.account.currency),
        )
        return Response(OrderOut(order).data, status=201)


class LicenceActivateIn(serializers.Serializer):
    key = serializers.CharField(max_length=80)
    instance = serializers.CharField(max_length=200, required=False, allow_blank=True)


class LicenceActivateOut(serializers.Serializer):
    product = serializers.CharField(source="product.name")
    users = serializers.IntegerField(source="users_covered")
    activated_at = serializers.DateTimeField()


class LicenceActivateView(APIView):
    """Called by a self-hosted installation: the key is its credential."""

    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "licence_activation"

    @extend_schema(
        request=LicenceActivateIn,
        responses=LicenceActivateOut,
        summary="Activate a self-hosted installation with its licence key",
    )
    def post(self, request):
        data = validated_input(LicenceActivateIn, request)
        licence = services.licence_activate(key=data["key"], instance=data.get("instance", ""))
        return Response(LicenceActivateOut(licence).data)


class CreditOut(serializers.Serializer):
    product = serializers.CharField(source="product.code")
    name = serializers.CharField(source="product.name")
    units = serializers.IntegerField()
    used = serializers.IntegerField()
    refunded = serializers.IntegerField(help_text="Unused units taken back by refunds.")
    left = serializers.IntegerField()


class CreditUseIn(serializers.Serializer):
    product = serializers.CharField(max_length=60, help_text="The credit pack's product code.")
    units = serializers.IntegerField(min_value=1, max_value=10**9)
    reference = serializers.CharField(
        max_length=100, help_text="Your id for this use: the same reference twice counts once."
    )


def _product(code: str, kind: str) -> Product:
    product = Product.objects.filter(code=code, kind=kind).first()
    if product is None:
        raise ValidationError({"product": [f"No {kind.replace('_', ' ')} has the code {code}."]})
    return product


class CreditsView(BillingView):
    @extend_schema(responses=CreditOut(many=True), summary="Credits bought, used and left")
    def get(self, request, account_id):
        return Response(CreditOut(selectors.credits_left(account=self.account), many=True).data)


class CreditUseView(BillingView):
    @extend_schema(
        request=CreditUseIn,
        responses=CreditOut(many=True),
        summary="Use credits, oldest pack first",
    )
    def post(self, request, account_id):
        data = validated_input(CreditUseIn, request)
        services.credits_use(
            actor=request.user,
            account=self.account,
            product=_product(data["product"], Product.Kind.CREDIT_PACK),
            units=data["units"],
            reference=data["reference"],
        )
        return Response(CreditOut(selectors.credits_left(account=self.account), many=True).data)


class UsageIn(serializers.Serializer):
    product = serializers.CharField(max_length=60, help_text="The metered product's code.")
    quantity = serializers.IntegerField(min_value=1, max_value=10**9)
    reference = serializers.CharField(max_length=100)
    used_on = serializers.DateField(required=False, help_text="The account's local date.")


class UsageOut(serializers.Serializer):
    product = serializers.CharField(source="product.code")
    name = serializers.CharField(source="product.name")
    quantity = serializers.IntegerField(help_text="This month so far.")
    unbilled_before = serializers.IntegerField()
    estimate = serializers.SerializerMethodField()

    def get_estimate(self, row) -> dict | None:
        return money(row.estimate.amount, row.estimate.currency) if row.estimate else None


class UsageView(BillingView):
    @extend_schema(responses=UsageOut(many=True), summary="Metered use this month")
    def get(self, request, account_id):
        rows = selectors.usage_summary(
            account=self.account, today=selectors.account_today(self.account)
        )
        return Response(UsageOut(rows, many=True).data)

    @extend_schema(
        request=UsageIn, responses={201: UsageOut(many=True)}, summary="Record metered use"
    )
    def post(self, request, account_id):
        data = validated_input(UsageIn, request)
        services.usage_record(
            actor=request.user,
            account=self.account,
            product=_product(data["product"], Product.Kind.USAGE),
            quantity=data["quantity"],
            reference=data["reference"],
            used_on=data.get("used_on"),
        )
        rows = selectors.usage_summary(
            account=self.account, today=selectors.account_today(self.account)
        )
        return Response(UsageOut(rows, many=True).data, status=201)
