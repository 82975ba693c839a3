"""Billing API: the plan, seat changes (a preview endpoint, then the change), orders, credit."""

from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework.exceptions import ValidationError as DRFValidationError
from rest_framework.response import Response

from accounts.api import AccountScopedView, validated_input
from accounts.pagination import PaginatedView

from . import selectors, services
from .models import Price, Subscription
from .money import Money
from .serializers import (
    BillingOverviewOut,
    CancelIn,
    LedgerEntryOut,
    LedgerOut,
    OrderOut,
    PlanChangeIn,
    PlanChangeOut,
    PlanQuoteOut,
    QuoteOut,
    SeatChangeIn,
    SeatChangeOut,
    StartIn,
    StartOut,
    SubscriptionOut,
    money,
    plan_quote_data,
)


class BillingView(AccountScopedView):
    need = "billing"
    on_licence_screen = True

    def subscription(self, subscription_id) -> Subscription:
        """The account's plan: add-ons and support contracts have their own rules."""
        subscription = (
            Subscription.objects.plans()
            .filter(account=self.account, pk=subscription_id)
            .select_related("price__product")
            .first()
        )
        if subscription is None:
            raise Http404("No such subscription.")
        return subscription


class BillingOverviewView(BillingView):
    @extend_schema(responses=BillingOverviewOut, summary="The plan, seats and credit balance")
    def get(self, request, account_id):
        subscription = selectors.subscription_current(account=self.account)
        balance = selectors.ledger_balance(account=self.account, currency=self.account.currency)
        return Response(
            {
                "subscription": SubscriptionOut(subscription).data if subscription else None,
                "seats_paid": self.account.seats_paid,
                "credit_balance": money(balance.amount, balance.currency),
            }
        )


class SeatPreviewView(BillingView):
    @extend_schema(
        request=SeatChangeIn,
        responses=QuoteOut,
        summary="What changing the seats would charge or credit (changes nothing)",
    )
    def post(self, request, account_id, subscription_id):
        subscription = self.subscription(subscription_id)
        data = validated_input(SeatChangeIn, request)
        quote = services.subscription_seat_quote(
            subscription=subscription,
            quantity=data["quantity"],
            today=selectors.account_today(self.account),
        )
        return Response(QuoteOut(quote).data)


class SeatChangeView(BillingView):
    @extend_schema(
        request=SeatChangeIn,
        responses=SeatChangeOut,
        summary="Change the seats (charged or credited pro rata)",
    )
    def post(self, request, account_id, subscription_id):
        subscription = self.subscription(subscription_id)
        data = validated_input(SeatChangeIn, request)
        expected = data.get("expected_amount")
        subscription, quote, order = services.subscription_change_seats(
            actor=request.user,
            subscription=subscription,
            quantity=data["quantity"],
            expected_amount=None
            if expected is None
            else Money(expected, subscription.price.currency),
        )
        return Response(
            {
                "subscription": SubscriptionOut(subscription).data,
                "quote": QuoteOut(quote).data,
                "order": OrderOut(order).data if order else None,
            }
        )


class OrderListView(PaginatedView, BillingView):
    @extend_schema(responses=OrderOut(many=True), summary="Orders, newest first, with lines")
    def get(self, request, account_id):
        return self.paginated(
            selectors.order_list(account=self.account, limit=None, payments=False), OrderOut
        )


class LedgerView(BillingView):
    @extend_schema(responses=LedgerOut, summary="Credit balance and ledger, newest first")
    def get(self, request, account_id):
        view = selectors.ledger_view(account=self.account, currency=self.account.currency)
        return Response(
            {
                "balance": money(view.balance.amount, view.balance.currency),
                "entries": LedgerEntryOut(view.entries, many=True).data,
            }
        )


def _price(price_id) -> Price:
    price = Price.objects.filter(pk=price_id).select_related("product").first()
    if price is None:
        raise DRFValidationError({"price": ["No plan has that id."]})
    return price


class PlanPreviewView(BillingView):
    @extend_schema(
        request=PlanChangeIn,
        responses=PlanQuoteOut,
        summary="What moving to another plan would do (changes nothing)",
    )
    def post(self, request, account_id, subscription_id):
        subscription = self.subscription(subscription_id)
        data = validated_input(PlanChangeIn, request)
        quote = services.subscription_plan_quote(
            subscription=subscription,
            price=_price(data["price"]),
            today=selectors.account_today(self.account),
        )
        return Response(PlanQuoteOut(plan_quote_data(quote)).data)


class PlanChangeView(BillingView):
    @extend_schema(
        request=PlanChangeIn,
        responses=PlanChangeOut,
        summary="Upgrade now (difference pro rata) or downgrade at the next cycle",
    )
    def post(self, request, account_id, subscription_id):
        subscription = self.subscription(subscription_id)
        data = validated_input(PlanChangeIn, request)
        price = _price(data["price"])
        expected = data.get("expected_amount")
        subscription, quote, order = services.subscription_change_plan(
            actor=request.user,
            subscription=subscription,
            price=price,
            expected_amount=None if expected is None else Money(expected, price.currency),
        )
        return Response(
            {
                "subscription": SubscriptionOut(subscription).data,
                "quote": PlanQuoteOut(plan_quote_data(quote)).data,
                "order": OrderOut(order).data if order else None,
            }
        )


class CancelView(BillingView):
    @extend_schema(
        request=CancelIn,
        responses=SubscriptionOut,
        summary="Cancel at the end of the period, or keep renewing",
    )
    def post(self, request, account_id, subscription_id):
        subscription = self.subscription(subscription_id)
        data = validated_input(CancelIn, request)
        subscription = services.subscription_set_cancel_at_period_end(
            actor=request.user, subscription=subscription, cancel=data["cancel"]
        )
        return Response(SubscriptionOut(subscription).data)


class StartView(BillingView):
    @extend_schema(
        request=StartIn,
        responses={201: StartOut},
        summary="Start a plan: a free trial, or the first period paid now",
    )
    def post(self, request, account_id):
        data = validated_input(StartIn, request)
        subscription, order = services.subscription_start(
            actor=request.user,
            account=self.account,
            price=_price(data["price"]),
            quantity=data["quantity"],
            trial=data["trial"],
        )
        return Response(
            {
                "subscription": SubscriptionOut(subscription).data,
                "order": OrderOut(order).data if order else None,
            },
            status=201,
        )


class OrderPayView(BillingView):
    @extend_schema(
        request=None,
        responses=OrderOut,
        summary="Charge an order again after its payment failed",
    )
    def post(self, request, account_id, order_id):
        order = selectors.order_get(account=self.account, order_id=order_id)
        services.payment_retry(actor=request.user, order=order)
        order.refresh_from_db()
        return Response(OrderOut(order).data)
