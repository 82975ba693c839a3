"""API: support. Who may ask and this year's quota, the account's incidents, opening one
(the designated contact only) and writing on it.

Any member of the account may read; incidents are looked up in the caller's own
account: another account's incident answers 404, exactly like one that does not exist.
"""

from django.conf import settings
from django.db.models import Prefetch
from django.http import Http404
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from accounts.api import AccountScopedView, validated_input
from accounts.pagination import PaginatedView
from billing.selectors import support_incident_price
from billing.serializers import money

from . import services
from .models import Incident, IncidentMessage

STAFF_AUTHOR = "Support team"  # staff write as the team, as on the Support page
REFUSAL_KINDS = ["reseller", "startup", "lapsed", "not_contact"]  # services.Refusal.kind


# --- input ---------------------------------------------------------------------------


class IncidentOpenIn(serializers.Serializer):
    subject = serializers.CharField(max_length=200, trim_whitespace=True)
    description = serializers.CharField(max_length=20_000, trim_whitespace=True)
    severity = serializers.ChoiceField(
        choices=Incident.Severity.choices,
        help_text="P1: the system is down; P2: a major function does not work; P3: a minor "
        "problem with a workaround; P4: a question about use.",
    )
    confirm_extra = serializers.BooleanField(
        default=False,
        help_text="When this year's quota is used: agree to pay for an extra incident "
        "(the price is in the support view). It opens once its order is paid.",
    )


class IncidentMessageIn(serializers.Serializer):
    body = serializers.CharField(max_length=20_000, trim_whitespace=True)


# --- output --------------------------------------------------------------------------


class SupportMoneyOut(serializers.Serializer):
    amount = serializers.CharField(help_text="A decimal with 2 places.")
    currency = serializers.CharField()


class SupportRefusalOut(serializers.Serializer):
    kind = serializers.ChoiceField(
        choices=REFUSAL_KINDS,
        help_text="`not_contact`: only the designated contact opens incidents; the others "
        "mean nobody in the account can.",
    )
    message = serializers.CharField()


class SupportContactPersonOut(serializers.Serializer):
    name = serializers.CharField(source="user.get_full_name")
    email = serializers.EmailField(source="user.email")


class SupportQuotaOut(serializers.Serializer):
    year_start = serializers.DateField()
    next_reset = serializers.DateField()
    licensed = serializers.IntegerField(help_text="Seats paid now: the quota follows them.")
    quota = serializers.IntegerField()
    used = serializers.IntegerField()
    left = serializers.IntegerField()


class SupportEligibilityOut(serializers.Serializer):
    refusal = SupportRefusalOut(
        allow_null=True, help_text="Why the caller cannot open incidents; null when they can."
    )
    contact = SupportContactPersonOut(
        allow_null=True, help_text="The account's designated support contact; null when none."
    )
    quota = SupportQuotaOut(
        allow_null=True,
        help_text="This support year's incidents; null when the account has no support.",
    )
    extra_incident_price = SupportMoneyOut(
        allow_null=True, help_text="The price of an incident beyond the quota."
    )
    docs_url = serializers.URLField()
    support_email = serializers.EmailField(help_text="The contact may also write here (24/7).")


class IncidentListOut(serializers.Serializer):
    number = serializers.CharField()
    subject = serializers.CharField()
    severity = serializers.ChoiceField(choices=Incident.Severity.choices)
    state = serializers.ChoiceField(choices=Incident.State.choices)
    scope = serializers.ChoiceField(choices=Incident.Scope.choices)
    billing = serializers.ChoiceField(choices=Incident.Billing.choices)
    channel = serializers.ChoiceField(choices=Incident.Channel.choices)
    opened_at = serializers.DateTimeField()
    next_deadline = serializers.DateTimeField(
        allow_null=True, help_text="Our next first-response or update target; null when none."
    )
    resolved_at = serializers.DateTimeField(allow_null=True)


class IncidentMessageOut(serializers.Serializer):
    from_staff = serializers.BooleanField()
    author = serializers.SerializerMethodField()
    body = serializers.CharField()
    created_at = serializers.DateTimeField()

    def get_author(self, message) -> str:
        if message.from_staff:
            return STAFF_AUTHOR
        return message.author.get_full_name() if message.author else ""


class IncidentDetailOut(IncidentListOut):
    account = serializers.IntegerField(source="account_id")
    state_label = serializers.CharField(source="get_state_display")
    description = serializers.CharField()
    opened_by = serializers.SerializerMethodField()
    support_year_start = serializers.DateField()
    order = serializers.CharField(
        source="order.number",
        default=None,
        allow_null=True,
        help_text="The order of an extra incident; null when none.",
    )
    first_response_at = serializers.DateTimeField(allow_null=True)
    first_response_due_at = serializers.DateTimeField(allow_null=True)
    update_due_at = serializers.DateTimeField(allow_null=True)
    closed_at = serializers.DateTimeField(allow_null=True)
    reopened = serializers.IntegerField()
    messages = IncidentMessageOut(
        many=True, source="public_messages", help_text="The thread, oldest first."
    )

    def get_opened_by(self, incident) -> str:
        return incident.opened_by.get_full_name() if incident.opened_by else ""


# --- views ---------------------------------------------------------------------------


class SupportView(AccountScopedView):
    def today(self):
        return timezone.localtime(timezone.now(), self.account.tzinfo).date()

    def incident(self, number: str) -> Incident:
        incident = (
            Incident.objects.filter(account=self.account, number=number)
            .select_related("opened_by", "order")
            .prefetch_related(
                Prefetch(
                    "messages",
                    queryset=IncidentMessage.objects.filter(internal=False).select_related(
                        "author"
                    ),
                    to_attr="public_messages",
                )
            )
            .first()
        )
        if incident is None:
            raise Http404("No such incident.")
        return incident

    def detail(self, number: str, *, code: int = status.HTTP_200_OK) -> Response:
        return Response(IncidentDetailOut(self.incident(number)).data, status=code)


class SupportEligibilityView(SupportView):
    @extend_schema(
        responses=SupportEligibilityOut,
        summary="Whether the caller may open incidents, who the contact is, this year's quota",
    )
    def get(self, request, account_id):
        refusal = services.support_refusal(
            account=self.account, user=request.user, today=self.today()
        )
        quota = None
        if refusal is None or refusal.kind == "not_contact":
            quota = services.quota_get(account=self.account, today=self.today())
        price = support_incident_price(self.account)
        data = {
            "refusal": {"kind": refusal.kind, "message": refusal.message} if refusal else None,
            "contact": services.support_contact(self.account),
            "quota": quota
            and {
                "year_start": quota.year_start,
                "next_reset": quota.next_reset,
                "licensed": quota.licensed,
                "quota": quota.quota,
                "used": quota.used,
                "left": quota.left,
            },
            "extra_incident_price": price and money(price.amount, price.currency),
            "docs_url": settings.SUPPORT_DOCS_URL,
            "support_email": settings.SUPPORT_EMAIL,
        }
        return Response(SupportEligibilityOut(data).data)


class IncidentListView(PaginatedView, SupportView):
    @extend_schema(
        responses=IncidentListOut(many=True), summary="The account's incidents, newest first"
    )
    def get(self, request, account_id):
        return self.paginated(
            Incident.objects.filter(account=self.account).order_by("-opened_at", "-id"),
            IncidentListOut,
        )

    @extend_schema(
        request=IncidentOpenIn,
        responses={201: IncidentDetailOut},
        summary="Open an incident (the designated support contact)",
        description="403 for anyone but the contact (the answer names them); 400 under "
        "`support` when the account has no support (Startup Edition, lapsed, bought "
        "through a reseller), under `confirm_extra` when this year's quota is used and the "
        "extra incident's price is not confirmed.",
    )
    def post(self, request, account_id):
        data = validated_input(IncidentOpenIn, request)
        incident = services.incident_open(
            actor=request.user,
            account=self.account,
            subject=data["subject"],
            description=data["description"],
            severity=data["severity"],
            confirm_extra=data["confirm_extra"],
            channel=Incident.Channel.API,
        )
        return self.detail(incident.number, code=status.HTTP_201_CREATED)


class IncidentDetailView(SupportView):
    @extend_schema(
        responses=IncidentDetailOut, summary="One incident: its state, deadlines and thread"
    )
    def get(self, request, account_id, number):
        return self.detail(number)


class IncidentMessageView(SupportView):
    @extend_schema(
        request=IncidentMessageIn,
        responses={201: IncidentDetailOut},
        summary="Write on an incident (a resolved one reopens within 14 days)",
    )
    def post(self, request, account_id, number):
        incident = self.incident(number)
        data = validated_input(IncidentMessageIn, request)
        services.incident_reply(actor=request.user, incident=incident, body=data["body"])
        return self.detail(number, code=status.HTTP_201_CREATED)
