"""API: refund requests. Ask (account-scoped or from the purchases alone), list, follow,
withdraw, and write or add evidence.

Requests are looked up from the caller's own accounts: another account's request or
purchase answers 404, exactly like one that does not exist.
"""

from django.http import Http404
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api import AccountScopedView, validated_input
from accounts.errors import PortalError
from accounts.models import Account
from accounts.pagination import PaginatedView
from accounts.selectors import billing_accounts_q
from billing.models import OrderLine
from billing.serializers import money

from . import selectors, services
from .models import RefundLine, RefundPayout, RefundRequest
from .policy import REASONS

MAX_LINES = 200
STAFF_AUTHOR = "Billing team"  # staff write as the team, as on the Billing page


# --- input ---------------------------------------------------------------------------


class RefundRequestSubmitIn(serializers.Serializer):
    lines = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1),
        allow_empty=False,
        max_length=MAX_LINES,
        help_text="Order line ids, all of one paid order of the account.",
    )
    reason = serializers.ChoiceField(choices=REASONS)
    payout_method = serializers.ChoiceField(
        choices=RefundRequest.Payout.choices,
        help_text="`original`: back to the payment method; `credit`: as account credit.",
    )
    text = serializers.CharField(
        max_length=5000, required=False, allow_blank=True, default="", trim_whitespace=True
    )
    event_on = serializers.DateField(
        required=False,
        allow_null=True,
        default=None,
        help_text="The triggering event's date: bug report, outage, failed delivery.",
    )
    full_order = serializers.BooleanField(
        default=False, help_text="Ask for the whole order (every line of it)."
    )


class RefundRequestSubmitUploadIn(RefundRequestSubmitIn):
    evidence = serializers.ListField(
        child=serializers.FileField(),
        required=False,
        default=list,
        help_text="PDF, PNG, JPEG, GIF or plain-text files (multipart only).",
    )


class RefundRequestMessageIn(serializers.Serializer):
    body = serializers.CharField(max_length=5000, required=False, allow_blank=True, default="")


class RefundRequestMessageUploadIn(RefundRequestMessageIn):
    evidence = serializers.ListField(
        child=serializers.FileField(),
        required=False,
        default=list,
        help_text="PDF, PNG, JPEG, GIF or plain-text files (multipart only).",
    )


# --- output --------------------------------------------------------------------------


class RefundRequestMoneyOut(serializers.Serializer):
    amount = serializers.CharField(help_text="A decimal with 2 places.")
    currency = serializers.CharField()


class RefundRequestListOut(serializers.Serializer):
    number = serializers.CharField()
    state = serializers.ChoiceField(choices=RefundRequest.State.choices)
    outcome = serializers.CharField(
        help_text="Empty until decided; then `approved`, `partly_approved` or `denied`."
    )
    order = serializers.CharField(source="order.number")
    received_at = serializers.DateTimeField()
    approved_total = serializers.SerializerMethodField()
    next_deadline = serializers.DateTimeField(
        allow_null=True, help_text="The earliest deadline still to meet; null when none."
    )

    @extend_schema_field(RefundRequestMoneyOut)
    def get_approved_total(self, refund) -> dict:
        return money(refund.approved_total, refund.currency)


class RefundRequestDeadlinesOut(serializers.Serializer):
    ack_due_at = serializers.DateTimeField()
    decide_due_at = serializers.DateTimeField()
    payout_from = serializers.DateField(allow_null=True)
    payout_due_at = serializers.DateTimeField(allow_null=True)


class RefundRequestLineOut(serializers.Serializer):
    line = serializers.IntegerField(source="order_line_id", help_text="The order line's id.")
    description = serializers.CharField(source="order_line.description")
    engine_outcome = serializers.CharField(
        help_text="The policy's answer on arrival: `refund`, `review`, `none` or `redirect`."
    )
    engine_amount = serializers.SerializerMethodField()
    clause = serializers.CharField()
    last_day = serializers.DateField(allow_null=True)
    explanation = serializers.CharField()
    decision = serializers.ChoiceField(choices=RefundLine.Decision.choices)
    approved_amount = serializers.SerializerMethodField()
    deny_reason = serializers.CharField()

    @extend_schema_field(RefundRequestMoneyOut)
    def get_engine_amount(self, line) -> dict:
        return money(line.engine_amount, line.request.currency)

    @extend_schema_field(RefundRequestMoneyOut(allow_null=True))
    def get_approved_amount(self, line) -> dict | None:
        if line.approved_amount is None:
            return None
        return money(line.approved_amount, line.request.currency)


class RefundRequestMessageOut(serializers.Serializer):
    from_staff = serializers.BooleanField()
    author = serializers.SerializerMethodField()
    body = serializers.CharField()
    created_at = serializers.DateTimeField()

    def get_author(self, message) -> str:
        if message.from_staff:
            return STAFF_AUTHOR
        return message.author.full_name if message.author else ""


class RefundRequestEvidenceOut(serializers.Serializer):
    name = serializers.CharField()
    content_type = serializers.CharField()
    size = serializers.IntegerField(help_text="Bytes.")
    created_at = serializers.DateTimeField()


class RefundRequestPayoutOut(serializers.Serializer):
    method = serializers.ChoiceField(choices=RefundPayout.Method.choices)
    amount = serializers.SerializerMethodField()
    status = serializers.ChoiceField(choices=RefundPayout.Status.choices)
    error = serializers.CharField()

    @extend_schema_field(RefundRequestMoneyOut)
    def get_amount(self, payout) -> dict:
        return money(payout.amount, payout.currency)


class RefundRequestDetailOut(RefundRequestListOut):
    account = serializers.IntegerField(source="account_id")
    state_label = serializers.CharField(source="get_state_display")
    reason = serializers.CharField()
    event_on = serializers.DateField(allow_null=True)
    text = serializers.CharField()
    full_order = serializers.BooleanField()
    payout_method = serializers.ChoiceField(choices=RefundRequest.Payout.choices)
    channel = serializers.ChoiceField(choices=RefundRequest.Channel.choices)
    deadlines = RefundRequestDeadlinesOut(source="*")
    lines = RefundRequestLineOut(many=True, source="lines.all")
    messages = RefundRequestMessageOut(many=True, source="messages.all")
    evidence = RefundRequestEvidenceOut(many=True, source="evidence.all")
    payouts = RefundRequestPayoutOut(many=True, source="payouts.all")


# --- views ---------------------------------------------------------------------------


def _submit(request, account: Account, data: dict) -> Response:
    refund = services.refund_request_submit(
        actor=request.user,
        account=account,
        line_ids=data["lines"],
        reason=data["reason"],
        payout_method=data["payout_method"],
        text=data["text"],
        event_on=data["event_on"],
        full_order=data["full_order"],
        channel=RefundRequest.Channel.API,
        evidence=data["evidence"],
    )
    refund = selectors.refund_request_get(account=account, number=refund.number)
    return Response(RefundRequestDetailOut(refund).data, status=status.HTTP_201_CREATED)


SUBMIT_REQUEST = {
    "application/json": RefundRequestSubmitIn,
    "multipart/form-data": RefundRequestSubmitUploadIn,
}
MESSAGE_REQUEST = {
    "application/json": RefundRequestMessageIn,
    "multipart/form-data": RefundRequestMessageUploadIn,
}


class RefundRequestView(AccountScopedView):
    """Refund requests of one of the caller's accounts, for its owners and billing admins;
    another account's request answers 404."""

    need = "billing"
    on_licence_screen = True  # a lapsed account may still ask for its money back

    def refund(self, number: str) -> RefundRequest:
        return selectors.refund_request_get(account=self.account, number=number)

    def detail(self, number: str, *, code: int = status.HTTP_200_OK) -> Response:
        return Response(RefundRequestDetailOut(self.refund(number)).data, status=code)


class RefundRequestListView(PaginatedView, RefundRequestView):
    parser_classes = [JSONParser, MultiPartParser]

    @extend_schema(
        responses=RefundRequestListOut(many=True),
        summary="The account's refund requests, newest first",
    )
    def get(self, request, account_id):
        return self.paginated(
            selectors.refund_request_list(account=self.account), RefundRequestListOut
        )

    @extend_schema(
        request=SUBMIT_REQUEST,
        responses={201: RefundRequestDetailOut},
        summary="Ask for a refund of purchases of one order (JSON, or multipart with evidence)",
    )
    def post(self, request, account_id):
        data = validated_input(RefundRequestSubmitUploadIn, request)
        return _submit(request, self.account, data)


class RefundRequestDetailView(RefundRequestView):
    @extend_schema(
        responses=RefundRequestDetailOut,
        summary="One refund request: decisions, deadlines, messages, evidence, payouts",
    )
    def get(self, request, account_id, number):
        return self.detail(number)


class RefundRequestWithdrawView(RefundRequestView):
    @extend_schema(
        request=None,
        responses=RefundRequestDetailOut,
        summary="Withdraw a refund request not yet decided",
    )
    def post(self, request, account_id, number):
        services.refund_request_withdraw(actor=request.user, request=self.refund(number))
        return self.detail(number)


class RefundRequestMessageView(RefundRequestView):
    parser_classes = [JSONParser, MultiPartParser]

    @extend_schema(
        request=MESSAGE_REQUEST,
        responses={201: RefundRequestDetailOut},
        summary="Write to the billing team or add evidence (an answer restarts the review)",
    )
    def post(self, request, account_id, number):
        refund = self.refund(number)
        data = validated_input(RefundRequestMessageUploadIn, request)
        services.refund_request_message(
            actor=request.user, request=refund, body=data["body"], evidence=data["evidence"]
        )
        return self.detail(number, code=status.HTTP_201_CREATED)


class RefundRequestSubmitView(APIView):
    """The account is the one the purchases belong to: the caller must be its owner or a
    billing admin, else the purchases answer 404."""

    parser_classes = [JSONParser, MultiPartParser]
    error_statuses = (404,)  # a line of another account's, or none, looks missing

    @extend_schema(
        request=SUBMIT_REQUEST,
        responses={201: RefundRequestDetailOut},
        summary="Ask for a refund of purchases of one order; the account is theirs",
    )
    def post(self, request):
        data = validated_input(RefundRequestSubmitUploadIn, request)
        ids = list(dict.fromkeys(data["lines"]))
        accounts = set(
            OrderLine.objects.filter(
                billing_accounts_q(user=request.user, prefix="order__account__"), pk__in=ids
            ).values_list("pk", "order__account_id")
        )
        if len(accounts) != len(ids):
            raise Http404("No such purchase.")  # another account's line looks missing
        if len({account_id for _, account_id in accounts}) > 1:
            raise PortalError("Ask about the purchases of one order at a time.", field="lines")
        account = Account.objects.get(pk=next(iter(accounts))[1])
        return _submit(request, account, data)
