"""Customer pages: dashboard, account switcher, Account Settings (Profile, Users & seats)."""

from functools import wraps

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST
from rest_framework.authtoken.models import Token

from . import selectors, services
from .converters import parse_id
from .errors import PortalError
from .forms import (
    AccountCreateForm,
    InvitationSignupForm,
    InviteForm,
    ProfileForm,
    ReactivateForm,
    RoleForm,
    SeatForm,
)
from .middleware import SESSION_ACCOUNT_KEY
from .models import Account, Membership


def member_view(need: str | None = None, *, on_licence_screen: bool = False):
    """A page of the current account. `need`: "manage" (owners) or "billing".

    While the account is on the licence screen (its plan lapsed: 1CRM terms) only
    pages marked `on_licence_screen` (Billing, Profile) open; the rest show the screen.
    """

    def decorator(view):
        @login_required
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            membership = request.portal.membership
            if membership is None:
                if request.user.is_staff and view.__name__ == "dashboard":
                    return redirect("admin:index")
                return redirect("account_new")
            posted_for = request.POST.get("account_id") if request.method == "POST" else None
            if posted_for is not None and parse_id(posted_for) != membership.account_id:
                # The form came from a tab showing another account; the session has moved on.
                messages.error(
                    request,
                    f"That page was for another account; you are now working in "
                    f"{membership.account.name}. Nothing was changed: check and try again.",
                )
                return redirect("settings_users" if need == "manage" else "dashboard")
            status = membership.account.status
            if status in Account.LOCKED_STATUSES and not on_licence_screen:
                # Lapsed (1CRM terms), deactivated (a processed SaaS refund, acelle §5) or
                # suspended: the product is unusable; Billing and Profile stay open.
                return render(
                    request,
                    "accounts/licence_screen.html",
                    {"account": membership.account},
                    status=402 if status == Account.Status.LICENSE_SCREEN else 403,
                )
            if need == "manage" and not membership.can_manage_members:
                raise PermissionDenied("Only an owner of the account can manage users and seats.")
            if need == "billing" and not membership.can_see_billing:
                raise PermissionDenied("Only owners and billing admins can see billing.")
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


@member_view()
def dashboard(request):
    account = request.portal.account
    return render(
        request,
        "accounts/dashboard.html",
        {
            "account": account,
            "usage": selectors.seat_usage(account=account, now=timezone.now()),
            "contact": selectors.support_contact_get(account=account),
            "counts": selectors.member_counts(account=account),
        },
    )


@login_required
@require_POST
def account_switch(request):
    account_id = parse_id(request.POST.get("account_id", ""))
    if account_id is None:
        raise Http404("No such account.")
    account, _ = selectors.account_get_for_user(user=request.user, account_id=account_id)
    request.session[SESSION_ACCOUNT_KEY] = account.pk
    messages.success(request, f"You are now working in {account.name}.")
    return redirect("dashboard")


@login_required
def account_new(request):
    form = AccountCreateForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                account = services.account_create(
                    owner=request.user,
                    name=form.cleaned_data["company"],
                    timezone_name=form.cleaned_data["timezone"],
                    currency=form.cleaned_data["currency"],
                )
            except PortalError as exc:
                form.add_error(exc.field if exc.field in form.fields else None, exc.message)
            else:
                request.session[SESSION_ACCOUNT_KEY] = account.pk
                messages.success(request, f"{account.name} is ready. You are its owner.")
                return redirect("dashboard")
        status = 400
    return render(request, "accounts/account_new.html", {"form": form}, status=status)


@member_view(on_licence_screen=True)
def settings_profile(request):
    form = ProfileForm(request.POST or None, initial={"full_name": request.user.full_name})
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                services.user_update_profile(
                    user=request.user, full_name=form.cleaned_data["full_name"]
                )
            except PortalError as exc:
                form.add_error("full_name", exc.message)
            else:
                messages.success(request, "Your profile is saved.")
                return redirect("settings_profile")
        status = 400
    token = Token.objects.filter(user=request.user).first()
    new_key = request.session.pop("new_api_token", None)
    bills = Membership.objects.filter(
        user=request.user,
        is_active=True,
        role__in=[Membership.Role.OWNER, Membership.Role.BILLING_ADMIN],
    ).exists()
    return render(
        request,
        "accounts/settings_profile.html",
        {
            "form": form,
            "tab": "profile",
            "token": token,
            "new_key": new_key,
            "reminders": [
                (kind, label, kind not in (request.user.mail_off or []))
                for kind, label in selectors.REMINDER_MAILS.items()
            ]
            if bills
            else [],
        },
        status=status,
    )


@member_view(on_licence_screen=True)
@require_POST
def mail_preferences(request):
    wanted = set(request.POST.getlist("mail"))
    services.user_set_mail_off(
        user=request.user, kinds=[kind for kind in selectors.REMINDER_MAILS if kind not in wanted]
    )
    messages.success(request, "Your mail preferences are saved.")
    return redirect("settings_profile")


@member_view(on_licence_screen=True)
@require_POST
def api_token(request):
    action = request.POST.get("action")
    if action == "rotate":
        token = services.api_token_rotate(user=request.user)
        # Shown once, on the next page only.
        request.session["new_api_token"] = token.key
        messages.success(request, "Your new API token is below. Copy it now: it is shown once.")
    elif action == "revoke":
        services.api_token_revoke(user=request.user)
        messages.success(request, "Your API token is revoked.")
    else:
        messages.error(request, "Choose whether to create or revoke the token.")
        return redirect("settings_profile")
    return redirect("settings_profile")


def _users_page(request, *, invite_form=None, status=200, error=None):
    account = request.portal.account
    now = timezone.now()
    members = list(selectors.member_list(account=account))
    invitations = list(selectors.invitation_list(account=account, now=now))
    for invitation in invitations:
        invitation.expired = invitation.expires_at <= now
    usage = selectors.seat_usage(account=account, now=now)
    if error:
        messages.error(request, error)
    return render(
        request,
        "accounts/settings_users.html",
        {
            "tab": "users",
            "account": account,
            "members": members,
            "invitations": invitations,
            "usage": usage,
            "invite_form": invite_form or InviteForm(initial={"with_seat": usage.free > 0}),
            "roles": RoleForm.base_fields["role"].choices,
        },
        status=status,
    )


@member_view(need="manage")
def settings_users(request):
    if request.method != "POST":
        return _users_page(request)
    form = InviteForm(request.POST)
    if not form.is_valid():
        return _users_page(request, invite_form=form, status=400)
    try:
        invitation, _ = services.invitation_create(
            actor=request.user,
            account=request.portal.account,
            email=form.cleaned_data["email"],
            role=form.cleaned_data["role"],
            with_seat=form.cleaned_data["with_seat"],
        )
    except PortalError as exc:
        form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        return _users_page(request, invite_form=form, status=400)
    messages.success(
        request,
        f"Invitation sent to {invitation.email}. The link works until "
        f"{timezone.localtime(invitation.expires_at):%d %B %Y %H:%M %Z}.",
    )
    return redirect("settings_users")


MEMBER_ACTIONS = {
    "role": (
        RoleForm,
        lambda req, m, d: services.membership_set_role(
            actor=req.user, membership=m, role=d["role"]
        ),
    ),
    "seat": (
        SeatForm,
        lambda req, m, d: services.membership_set_seat(
            actor=req.user, membership=m, has_seat=d["has_seat"]
        ),
    ),
    "deactivate": (
        None,
        lambda req, m, d: services.membership_deactivate(actor=req.user, membership=m),
    ),
    "reactivate": (
        ReactivateForm,
        lambda req, m, d: services.membership_reactivate(
            actor=req.user, membership=m, with_seat=d["with_seat"]
        ),
    ),
    "contact": (
        None,
        lambda req, m, d: services.support_contact_set(
            actor=req.user, account=m.account, membership=m
        ),
    ),
}

ACTION_DONE = {
    "role": "{email} is now {role}.",
    "seat": "{email} {seat}.",
    "deactivate": "{email} is deactivated; their seat is free.",
    "reactivate": "{email} is active again.",
    "contact": "{email} is now the designated support contact.",
}


@member_view(need="manage")
def member_action(request, membership_id: int, action: str):
    if action not in MEMBER_ACTIONS:
        raise Http404("No such action.")
    if request.method != "POST":
        return redirect("settings_users")
    membership = selectors.member_get(account=request.portal.account, membership_id=membership_id)
    form_class, run = MEMBER_ACTIONS[action]
    data = {}
    if form_class is not None:
        form = form_class(request.POST)
        if not form.is_valid():
            problems = "; ".join(
                f"{field}: {' '.join(errors)}" for field, errors in form.errors.items()
            )
            return _users_page(request, status=400, error=f"Nothing changed. {problems}")
        data = form.cleaned_data
    try:
        membership = run(request, membership, data)
    except PortalError as exc:
        # A refusal by the rules, not bad input: back to the list with the reason.
        messages.error(request, exc.message)
        return redirect("settings_users")
    messages.success(
        request,
        ACTION_DONE[action].format(
            email=membership.user.email,
            role=membership.get_role_display().lower(),
            seat="holds a licensed seat" if membership.has_seat else "no longer holds a seat",
        ),
    )
    return redirect("settings_users")


@member_view(need="manage")
def invitation_action(request, invitation_id: int, action: str):
    invitation = selectors.invitation_get(
        account=request.portal.account, invitation_id=invitation_id
    )
    if request.method != "POST":
        return redirect("settings_users")
    try:
        if action == "resend":
            invitation, _ = services.invitation_resend(actor=request.user, invitation=invitation)
            messages.success(request, f"A new invitation link is on its way to {invitation.email}.")
        elif action == "revoke":
            services.invitation_revoke(actor=request.user, invitation=invitation)
            messages.success(request, f"The invitation to {invitation.email} is withdrawn.")
        else:
            raise Http404("No such action.")
    except PortalError as exc:
        messages.error(request, exc.message)
    return redirect("settings_users")


def invitation_accept(request, token: str):
    """Accept an invitation: signs the person up, or adds the account to their login."""
    invitation = selectors.invitation_get_by_token(token=token)
    if invitation is None:
        return render(
            request,
            "accounts/invitation.html",
            {"error": "This invitation link is not valid. Check that you copied all of it."},
            status=404,
        )
    try:
        services.invitation_check(invitation=invitation)
    except PortalError as exc:
        return render(
            request,
            "accounts/invitation.html",
            {"invitation": invitation, "error": exc.message},
            status=410,
        )
    user = request.user
    existing_login = not user.is_authenticated and selectors.login_exists_for_email(
        email=invitation.email
    )
    form = None
    status = 200
    if user.is_authenticated:
        if request.method == "POST":
            try:
                membership = services.invitation_accept(invitation=invitation, user=user)
            except PortalError as exc:
                return render(
                    request,
                    "accounts/invitation.html",
                    {"invitation": invitation, "error": exc.message},
                    status=400,
                )
            request.session[SESSION_ACCOUNT_KEY] = membership.account_id
            note = (
                ""
                if membership.has_seat or not invitation.with_seat
                else (" No licensed seat was free; an owner can give you one.")
            )
            messages.success(request, f"Welcome to {membership.account.name}.{note}")
            return redirect("dashboard")
    elif not existing_login:
        form = InvitationSignupForm(request.POST or None)
        if request.method == "POST":
            if form.is_valid():
                try:
                    new_user, membership = services.user_signup_from_invitation(
                        invitation=invitation,
                        full_name=form.cleaned_data["full_name"],
                        password=form.cleaned_data["password1"],
                    )
                except PortalError as exc:
                    form.add_error("password1" if exc.field == "password" else None, exc.message)
                else:
                    login(request, new_user, backend="django.contrib.auth.backends.ModelBackend")
                    request.session[SESSION_ACCOUNT_KEY] = membership.account_id
                    messages.success(request, f"Welcome to {membership.account.name}.")
                    return redirect("dashboard")
            status = 400
    return render(
        request,
        "accounts/invitation.html",
        {
            "invitation": invitation,
            "form": form,
            "existing_login": existing_login,
            "login_url": reverse("account_login") + "?next=" + request.path,
            "wrong_email": user.is_authenticated and user.email.lower() != invitation.email.lower(),
        },
        status=status,
    )
