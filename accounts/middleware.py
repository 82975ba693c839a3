from functools import cached_property

from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode

from . import formatting, selectors
from .request_context import client_ip, ip_from_request

SESSION_ACCOUNT_KEY = "portal_account_id"


class RequestContextMiddleware:
    """Makes the client address available to audit rows written during the request."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = client_ip.set(ip_from_request(request))
        try:
            return self.get_response(request)
        finally:
            client_ip.reset(token)


class PortalContext:
    """The signed-in user's memberships and the account they are working in."""

    def __init__(self, request):
        self._request = request

    @cached_property
    def memberships(self):
        user = self._request.user
        if not user.is_authenticated:
            return []
        return list(selectors.membership_list_for_user(user=user))

    @cached_property
    def membership(self):
        if not self.memberships:
            return None
        wanted = self._request.session.get(SESSION_ACCOUNT_KEY)
        for membership in self.memberships:
            if membership.account_id == wanted:
                return membership
        return self.memberships[0]

    @property
    def account(self):
        return self.membership.account if self.membership else None


class CurrentAccountMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.portal = PortalContext(request)
        # Pages show times in the account's zone (windows are counted in its local dates).
        # The API answers in UTC whatever account the browser session is looking at.
        if request.path.startswith("/api/") or not request.user.is_authenticated:
            return self.get_response(request)
        account = request.portal.account
        if account is None:
            return self.get_response(request)
        timezone.activate(account.tzinfo)
        try:
            with formatting.override(account.locale):
                return self.get_response(request)
        finally:
            timezone.deactivate()


class StaffMFAMiddleware:
    """Staff must have two-factor authentication before they use the staff console."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = request.user
        in_console = request.path.startswith(reverse("admin:index"))
        if in_console and user.is_authenticated and not user.is_staff:
            # The admin would send a signed-in customer to its login, which sends them
            # back (ERR_TOO_MANY_REDIRECTS): say what the console is instead.
            return render(request, "accounts/staff_only.html", status=403)
        if in_console and user.is_authenticated and user.is_staff and not _has_mfa(user):
            messages.warning(
                request,
                "The staff console requires two-factor authentication. "
                "Set up an authenticator app to continue.",
            )
            return redirect(reverse("mfa_activate_totp") + "?" + urlencode({"next": request.path}))
        return self.get_response(request)


def _has_mfa(user) -> bool:
    from allauth.mfa.models import Authenticator

    return Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists()
