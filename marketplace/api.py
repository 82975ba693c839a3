"""Marketplace API: the catalogue and an account's installations for customers; and the
developer API, authenticated by an app's own secret (never a customer's token)."""

from django.conf import settings
from django.http import Http404
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import APIException, AuthenticationFailed
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView

from accounts.api import AccountScopedView, validated_input
from accounts.errors import PortalError
from accounts.openapi import ValidationErrorOut
from accounts.pagination import PaginatedView

from . import selectors, services
from .models import App, Installation, Plan
from .serializers import (
    AppDetailOut,
    AppLicenceOut,
    AppOut,
    AppUsageBatchIn,
    AppUsageBatchOut,
    AppUsageIn,
    AppUsageOut,
    InstallationChangeIn,
    InstallationOut,
    InstallIn,
    OutcomeOut,
)


def outcome_data(outcome: services.Outcome) -> dict:
    return OutcomeOut(
        {
            "installation": outcome.installation,
            "message": outcome.message,
            "redirect_url": outcome.redirect_url,
            "refund": outcome.refund,
        }
    ).data


class AppListView(PaginatedView, APIView):
    @extend_schema(
        responses=AppOut(many=True),
        summary="Published marketplace apps",
        parameters=[
            OpenApiParameter("q", str, description="Words in the name, summary or developer"),
            OpenApiParameter("category", str, enum=[c for c, _ in selectors.CATEGORIES]),
            OpenApiParameter("pricing_model", str, enum=[m for m, _ in selectors.PRICING_MODELS]),
        ],
    )
    def get(self, request):
        category = request.query_params.get("category", "")
        model = request.query_params.get("pricing_model", "")
        if category and category not in dict(selectors.CATEGORIES):
            raise PortalError(f"“{category}” is not a category.", field="category")
        if model and model not in dict(selectors.PRICING_MODELS):
            raise PortalError(f"“{model}” is not a pricing model.", field="pricing_model")
        apps = selectors.app_list(
            q=request.query_params.get("q", "")[:200], category=category, pricing_model=model
        )
        return self.paginated(apps, AppOut)


class AppDetailView(APIView):
    @extend_schema(responses=AppDetailOut, summary="One published app, its plans and refund terms")
    def get(self, request, slug):
        return Response(AppDetailOut(selectors.app_get(slug=slug)).data)


class InstallationListView(PaginatedView, AccountScopedView):
    @extend_schema(responses=InstallationOut(many=True), summary="Apps installed in the account")
    def get(self, request, account_id):
        return self.paginated(selectors.installation_list(account=self.account), InstallationOut)

    @extend_schema(request=InstallIn, responses={201: OutcomeOut}, summary="Install an app")
    def post(self, request, account_id):
        data = validated_input(InstallIn, request)
        app = selectors.app_find(data["app"])
        if app is None:
            raise PortalError(f"There is no published app “{data['app']}”.", field="app")
        plan = selectors.plan_find(app, data.get("plan"))
        if plan is None:
            raise PortalError(f"{app.name} has no plan “{data.get('plan')}”.", field="plan")
        outcome = services.installation_install(
            actor=request.user,
            account=self.account,
            app=app,
            plan=plan,
            usage_cap=data.get("usage_cap"),
            quantity=data["quantity"],
        )
        return Response(outcome_data(outcome), status=status.HTTP_201_CREATED)


class InstallationView(AccountScopedView):
    def installation(self, installation_id) -> Installation:
        return selectors.installation_get(account=self.account, installation_id=installation_id)


class InstallationDetailView(InstallationView):
    @extend_schema(responses=InstallationOut, summary="One installation")
    def get(self, request, account_id, installation_id):
        return Response(InstallationOut(self.installation(installation_id)).data)

    @extend_schema(
        request=InstallationChangeIn,
        responses=OutcomeOut,
        summary="Change the plan or the usage cap",
    )
    def patch(self, request, account_id, installation_id):
        inst = self.installation(installation_id)
        data = validated_input(InstallationChangeIn, request)
        message = ""
        if "usage_cap" in data:
            inst = services.installation_set_cap(
                actor=request.user, installation=inst, usage_cap=data["usage_cap"]
            )
            message = "The monthly cap is saved."
        if data.get("plan"):
            plan = Plan.objects.filter(app=inst.app, code=data["plan"], is_active=True).first()
            if plan is None:
                raise PortalError(f"{inst.app.name} has no plan “{data['plan']}”.", field="plan")
            outcome = services.installation_change_plan(
                actor=request.user, installation=inst, plan=plan
            )
            inst, message = outcome.installation, outcome.message
        if not message:
            raise PortalError("Give a plan or a usage_cap to change.", field="non_field_errors")
        inst = self.installation(inst.pk)
        return Response(outcome_data(services.Outcome(installation=inst, message=message)))


class InstallationCancelView(InstallationView):
    uninstall = False

    @extend_schema(
        request=None, responses=OutcomeOut, summary="Cancel an installed app (onecloud §4)"
    )
    def post(self, request, account_id, installation_id):
        outcome = services.installation_cancel(
            actor=request.user,
            installation=self.installation(installation_id),
            uninstall=self.uninstall,
        )
        outcome.installation = self.installation(installation_id)
        return Response(outcome_data(outcome))


class InstallationUninstallView(InstallationCancelView):
    uninstall = True

    @extend_schema(request=None, responses=OutcomeOut, summary="Cancel and uninstall an app")
    def post(self, request, account_id, installation_id):
        return super().post(request, account_id, installation_id)


class InstallationRefundView(InstallationView):
    @extend_schema(
        responses=OutcomeOut,
        summary="What a refund request about this app gets now (an external app: its developer)",
    )
    def get(self, request, account_id, installation_id):
        inst = self.installation(installation_id)
        offer = services.refund_offer(inst)
        if offer is None:
            message = "Nothing paid for this app can be refunded."
        elif offer["outcome"] == "redirect":
            message = f"{offer['explanation']} Contact: {offer['contact']}"
        else:
            message = offer["explanation"]
        return Response(
            outcome_data(services.Outcome(installation=inst, message=message, refund=offer))
        )


class EntitlementsView(AccountScopedView):
    @extend_schema(responses=dict, summary="What the account may use now (for the CRM)")
    def get(self, request, account_id):
        return Response(selectors.entitlements(account=self.account))


# --- developer API ---------------------------------------------------------------------


class AppKeyAuthentication(BaseAuthentication):
    """`Authorization: Bearer mkp_…`, the app's secret from the staff console."""

    keyword = b"bearer"

    def authenticate(self, request):
        auth = get_authorization_header(request).split()
        if not auth or auth[0].lower() != self.keyword:
            return None
        if len(auth) != 2:
            raise AuthenticationFailed("Send the app's secret as `Authorization: Bearer <secret>`.")
        app = services.app_from_api_key(auth[1].decode(errors="replace"))
        if app is None:
            raise AuthenticationFailed("This app secret is not valid.")
        return (AppCaller(app), app)

    def authenticate_header(self, request):
        return 'Bearer realm="developer-api"'


class AppCaller:
    """The caller of the developer API: an app, not a user."""

    is_authenticated = True
    is_staff = False

    def __init__(self, app: App):
        self.app = app
        self.pk = None


class IsApp(BasePermission):
    def has_permission(self, request, view):
        return isinstance(request.auth, App)


class AppRateThrottle(SimpleRateThrottle):
    scope = "app_api"

    def get_rate(self):
        return settings.MARKETPLACE_APP_API_RATE

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": f"app{request.auth.pk}"}


class AppKeyScheme(OpenApiAuthenticationExtension):
    target_class = AppKeyAuthentication
    name = "appSecret"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "The app's developer API secret (mkp_…).",
        }


class UsageCapReached(APIException):
    status_code = 402
    default_code = "usage_cap_reached"


CAP_REACHED = OpenApiResponse(
    ValidationErrorOut, description="Past the customer's monthly cap: `quantity` says why."
)


class DeveloperView(APIView):
    authentication_classes = [AppKeyAuthentication]
    permission_classes = [IsApp]
    throttle_classes = [AppRateThrottle]

    def installation(self, installation_id) -> Installation:
        inst = (
            Installation.objects.filter(pk=installation_id, app=self.request.auth)
            .select_related("plan", "subscription")
            .first()
        )
        if inst is None:
            raise Http404("No installation of this app with that id.")
        return inst


class DeveloperInstallationListView(PaginatedView, DeveloperView):
    @extend_schema(
        responses=AppLicenceOut(many=True),
        summary="Installations of the calling app",
        tags=["developer"],
    )
    def get(self, request):
        rows = (
            Installation.objects.filter(app=request.auth)
            .select_related("plan", "subscription")
            .order_by("pk")
        )
        return self.paginated(rows, AppLicenceOut)


class DeveloperLicenceView(DeveloperView):
    @extend_schema(
        responses=AppLicenceOut,
        summary="An installation's licence, plan and scopes",
        tags=["developer"],
    )
    def get(self, request, installation_id):
        return Response(AppLicenceOut(self.installation(installation_id)).data)


class DeveloperUsageView(DeveloperView):
    def report(self, installation_id, entries):
        try:
            return services.usage_report_many(
                app=self.request.auth, installation_id=installation_id, entries=entries
            )
        except Installation.DoesNotExist:
            raise Http404("No installation of this app with that id.") from None
        except PortalError as exc:
            if exc.code == "usage_cap_reached":
                raise UsageCapReached({exc.field: [exc.message]}) from None
            raise

    @extend_schema(
        request=AppUsageIn,
        responses={201: AppUsageOut, 200: AppUsageOut, 402: CAP_REACHED},
        parameters=[
            OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=True)
        ],
        summary="Record usage: the same Idempotency-Key twice is one record (402 past the cap)",
        tags=["developer"],
    )
    def post(self, request, installation_id):
        data = validated_input(AppUsageIn, request)
        key = request.headers.get("Idempotency-Key", "")
        (result,) = self.report(installation_id, [(key, data["quantity"], data.get("used_on"))])
        return Response(AppUsageOut(result.usage).data, status=201 if result.created else 200)


class DeveloperUsageBatchView(DeveloperUsageView):
    @extend_schema(
        request=AppUsageBatchIn,
        responses={201: AppUsageBatchOut, 200: AppUsageBatchOut, 402: CAP_REACHED},
        summary="Record up to 1,000 uses at once: all or none (402 past the cap)",
        tags=["developer"],
    )
    def post(self, request, installation_id):
        data = validated_input(AppUsageBatchIn, request)
        results = self.report(
            installation_id,
            [
                (row["idempotency_key"], row["quantity"], row.get("used_on"))
                for row in data["records"]
            ],
        )
        created = sum(result.created for result in results)
        body = {
            "created": created,
            "records": AppUsageOut([r.usage for r in results], many=True).data,
        }
        return Response(body, status=201 if created else 200)
