"""REST API v1 for accounts, members, invitations and the support contact.

Every object is looked up from the caller's own memberships: another account's
object answers 404, exactly like one that does not exist.
"""

from django.http import Http404, JsonResponse
from django.utils import timezone
from django.views.defaults import page_not_found
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.exceptions import APIException, NotFound, PermissionDenied
from rest_framework.exceptions import ValidationError as DRFValidationError
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from . import selectors, services
from .errors import NotAllowed, PortalError
from .models import Account
from .pagination import PaginatedView
from .serializers import (
    AccountOut,
    InvitationIn,
    InvitationOut,
    MemberOut,
    MemberUpdateIn,
    MeOut,
    ReactivateIn,
    SupportContactIn,
    SupportContactOut,
)


class LicenceScreen(APIException):
    status_code = 402
    default_detail = (
        "The account's subscription has lapsed: only billing is available until the "
        "renewal is paid."
    )
    default_code = "licence_screen"


def exception_handler(exc, context):
    """Domain refusals become 400 with the field they concern (403 for permissions)."""
    if isinstance(exc, NotAllowed):
        exc = PermissionDenied(exc.message)
    elif isinstance(exc, PortalError):
        exc = DRFValidationError({exc.field or "non_field_errors": [exc.message]}, code=exc.code)
    return drf_exception_handler(exc, context)


def not_found(request, exception):
    """handler404: under /api/ a URL no view matches (an id that is not a number, say)
    answers JSON like every other API 404; elsewhere the site's page."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": str(NotFound.default_detail)}, status=404)
    return page_not_found(request, exception)


def validated_input(serializer_class, request, **kwargs):
    serializer = serializer_class(data=request.data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class AccountScopedView(APIView):
    """Resolves `account_id` to one of the caller's accounts, else 404."""

    need = None  # "manage" (owners) or "billing" (owners and billing admins)
    on_licence_screen = False  # billing endpoints stay open so the renewal can be paid

    @property
    def error_statuses(self) -> tuple[int, ...]:
        """Answers beyond 400/401/403/404, for the schema (accounts.openapi.AutoSchema)."""
        return () if self.on_licence_screen else (LicenceScreen.status_code,)

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        self.account, self.membership = selectors.account_get_for_user(
            user=request.user, account_id=kwargs["account_id"]
        )
        if self.account.status in Account.LOCKED_STATUSES and not self.on_licence_screen:
            if self.account.status == Account.Status.LICENSE_SCREEN:
                raise LicenceScreen()
            raise PermissionDenied(
                f"The account is {self.account.get_status_display().lower()}: only billing "
                "is available."
            )
        if self.need == "manage" and not self.membership.can_manage_members:
            raise PermissionDenied("Only an owner of the account can manage users and seats.")
        if self.need == "billing" and not self.membership.can_see_billing:
            raise PermissionDenied("Only owners and billing admins can see this.")


class MeView(APIView):
    @extend_schema(responses=MeOut, summary="The signed-in user and their accounts")
    def get(self, request):
        return Response(MeOut(request.user).data)


class AccountListView(APIView):
    @extend_schema(responses=AccountOut(many=True), summary="Accounts the user belongs to")
    def get(self, request):
        memberships = list(
            selectors.membership_list_with_seat_usage(user=request.user, now=timezone.now())
        )
        accounts = [m.account for m in memberships]
        context = {
            "memberships": {m.account_id: m for m in memberships},
            "usage": {m.account_id: m.seat_usage for m in memberships},
        }
        return Response(AccountOut(accounts, many=True, context=context).data)


class AccountDetailView(AccountScopedView):
    @extend_schema(responses=AccountOut, summary="One of the user's accounts")
    def get(self, request, account_id):
        usage = selectors.seat_usage(account=self.account, now=timezone.now())
        context = {
            "memberships": {self.account.pk: self.membership},
            "usage": {self.account.pk: usage},
        }
        return Response(AccountOut(self.account, context=context).data)


class MemberListView(PaginatedView, AccountScopedView):
    need = "billing"

    @extend_schema(responses=MemberOut(many=True), summary="Members of the account")
    def get(self, request, account_id):
        return self.paginated(selectors.member_list(account=self.account), MemberOut)


class MemberDetailView(AccountScopedView):
    need = "billing"

    @extend_schema(responses=MemberOut, summary="One member")
    def get(self, request, account_id, membership_id):
        member = selectors.member_get(account=self.account, membership_id=membership_id)
        return Response(MemberOut(member).data)

    @extend_schema(
        request=MemberUpdateIn,
        responses=MemberOut,
        summary="Change a member's role or seat (owners)",
    )
    def patch(self, request, account_id, membership_id):
        if not self.membership.can_manage_members:
            raise PermissionDenied("Only an owner of the account can manage users and seats.")
        member = selectors.member_get(account=self.account, membership_id=membership_id)
        data = validated_input(MemberUpdateIn, request)
        member = services.membership_update(
            actor=request.user,
            membership=member,
            role=data.get("role"),
            has_seat=data.get("has_seat"),
        )
        return Response(MemberOut(member).data)


class MemberDeactivateView(AccountScopedView):
    need = "manage"

    @extend_schema(request=None, responses=MemberOut, summary="Deactivate a member (owners)")
    def post(self, request, account_id, membership_id):
        member = selectors.member_get(account=self.account, membership_id=membership_id)
        member = services.membership_deactivate(actor=request.user, membership=member)
        return Response(MemberOut(member).data)


class MemberReactivateView(AccountScopedView):
    need = "manage"

    @extend_schema(request=ReactivateIn, responses=MemberOut, summary="Reactivate a member")
    def post(self, request, account_id, membership_id):
        member = selectors.member_get(account=self.account, membership_id=membership_id)
        data = validated_input(ReactivateIn, request)
        member = services.membership_reactivate(
            actor=request.user, membership=member, with_seat=data["with_seat"]
        )
        return Response(MemberOut(member).data)


class InvitationListView(AccountScopedView):
    need = "manage"

    @extend_schema(responses=InvitationOut(many=True), summary="Pending invitations")
    def get(self, request, account_id):
        now = timezone.now()
        invitations = selectors.invitation_list(account=self.account, now=now)
        return Response(InvitationOut(invitations, many=True, context={"now": now}).data)

    @extend_schema(
        request=InvitationIn, responses={201: InvitationOut}, summary="Invite someone by email"
    )
    def post(self, request, account_id):
        data = validated_input(InvitationIn, request)
        invitation, _ = services.invitation_create(
            actor=request.user,
            account=self.account,
            email=data["email"],
            role=data["role"],
            with_seat=data["with_seat"],
        )
        return Response(
            InvitationOut(invitation, context={"now": timezone.now()}).data,
            status=status.HTTP_201_CREATED,
        )


class InvitationDetailView(AccountScopedView):
    need = "manage"

    @extend_schema(responses={204: None}, summary="Withdraw an invitation")
    def delete(self, request, account_id, invitation_id):
        invitation = selectors.invitation_get(account=self.account, invitation_id=invitation_id)
        services.invitation_revoke(actor=request.user, invitation=invitation)
        return Response(status=status.HTTP_204_NO_CONTENT)


class InvitationResendView(AccountScopedView):
    need = "manage"

    @extend_schema(request=None, responses=InvitationOut, summary="Send a new invitation link")
    def post(self, request, account_id, invitation_id):
        invitation = selectors.invitation_get(account=self.account, invitation_id=invitation_id)
        invitation, _ = services.invitation_resend(actor=request.user, invitation=invitation)
        return Response(InvitationOut(invitation, context={"now": timezone.now()}).data)


class SupportContactView(AccountScopedView):
    @extend_schema(responses=SupportContactOut, summary="The account's designated support contact")
    def get(self, request, account_id):
        contact = selectors.support_contact_get(account=self.account)
        if contact is None:
            raise Http404("This account has no support contact.")
        return Response(SupportContactOut(contact).data)

    @extend_schema(
        request=SupportContactIn,
        responses=SupportContactOut,
        summary="Change the support contact (owners)",
    )
    def put(self, request, account_id):
        if not self.membership.can_manage_members:
            raise PermissionDenied("Only an owner can change the support contact.")
        data = validated_input(SupportContactIn, request)
        try:
            member = selectors.member_get(account=self.account, membership_id=data["membership"])
        except Http404 as exc:
            raise DRFValidationError(
                {"membership": ["No member of this account has that id."]}
            ) from exc
        member = services.support_contact_set(
            actor=request.user, account=self.account, membership=member
        )
        return Response(SupportContactOut(member).data)
