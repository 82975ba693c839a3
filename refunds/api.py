"""POST /api/v1/refunds/quote: what a refund request for these lines would get."""

from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api import validated_input
from accounts.errors import PortalError
from accounts.models import Account
from accounts.selectors import billing_accounts_q
from billing.models import Order, OrderLine
from billing.selectors import entitlements_lost

from . import services
from .policy import REASONS


class RefundQuoteIn(serializers.Serializer):
    lines = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1),
        allow_empty=False,
        max_length=200,
        help_text="Order line ids, all of one account.",
    )
    reason = serializers.ChoiceField(choices=REASONS, default="no_longer_needed")
    event = serializers.DateField(
        required=False, help_text="The triggering event's date: bug report, failed delivery."
    )
    full_order = serializers.BooleanField(default=False)


class RefundDecisionOut(serializers.Serializer):
    line = serializers.IntegerField()
    description = serializers.CharField()
    outcome = serializers.ChoiceField(choices=["refund", "review", "none", "redirect"])
    amount = serializers.DictField()
    clause = serializers.CharField()
    last_day = serializers.DateField(allow_null=True)
    explanation = serializers.CharField()


class RefundQuoteOut(serializers.Serializer):
    policy = serializers.CharField()
    date = serializers.DateField(help_text="The account's local date the quote is for.")
    decisions = RefundDecisionOut(many=True)
    stops = serializers.ListField(
        child=serializers.CharField(),
        help_text="What would stop working if these purchases were refunded (1CRM terms).",
    )


class RefundQuoteView(APIView):
    error_statuses = (404,)  # a line of another account's, or none, looks missing

    @extend_schema(
        request=RefundQuoteIn,
        responses=RefundQuoteOut,
        summary="What a refund request for these purchases would get today, per line",
    )
    def post(self, request):
        data = validated_input(RefundQuoteIn, request)
        ids = list(dict.fromkeys(data["lines"]))
        lines = list(
            OrderLine.objects.filter(
                billing_accounts_q(user=request.user, prefix="order__account__"), pk__in=ids
            ).select_related("order__account__reseller")
        )
        if len(lines) != len(ids):
            raise Http404("No such purchase.")  # another account's line looks missing
        accounts = {line.order.account_id for line in lines}
        if len(accounts) > 1:
            raise PortalError("Quote the purchases of one account at a time.", field="lines")
        unpaid = [line for line in lines if line.order.status != Order.Status.PAID]
        if unpaid:
            raise PortalError(
                f"{unpaid[0].order.number} is not paid: there is nothing to refund.",
                field="lines",
            )
        account: Account = lines[0].order.account
        today = services.account_today(account)
        order = {pk: index for index, pk in enumerate(ids)}
        lines.sort(key=lambda line: order[line.pk])
        if data["full_order"]:
            lines = services.whole_orders(lines)
        decisions = services.decisions_for(
            account=account,
            lines=lines,
            on=today,
            reason=data["reason"],
            event=data.get("event"),
            full_order=data["full_order"],
        )
        return Response(
            RefundQuoteOut(
                {
                    "policy": services.active_preset().id,
                    "date": today,
                    "stops": entitlements_lost(account, without_lines=[line.pk for line in lines]),
                    "decisions": [
                        {
                            "line": line.pk,
                            "description": line.description,
                            "outcome": decisions[line.pk].outcome,
                            "amount": {
                                "amount": f"{decisions[line.pk].amount}",
                                "currency": account.currency,
                            },
                            "clause": decisions[line.pk].clause,
                            "last_day": decisions[line.pk].last_day,
                            "explanation": decisions[line.pk].explanation,
                        }
                        for line in lines
                    ],
                }
            ).data
        )
