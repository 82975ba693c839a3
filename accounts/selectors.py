"""Read queries for pages and endpoints, scoped to the account they serve."""

from dataclasses import dataclass

from django.db.models import Count, IntegerField, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.http import Http404

from .models import Account, Invitation, Membership, User


@dataclass(frozen=True)
class SeatUsage:
    paid: int
    members: int  # active members holding a licensed seat
    pending: int  # unexpired invitations that will take a seat

    @property
    def used(self) -> int:
        return self.members + self.pending

    @property
    def free(self) -> int:
        return max(self.paid - self.used, 0)

    def describe(self) -> str:
        text = f"{self.used} of {self.paid} licensed seats in use"
        if self.pending:
            text += (
                f" ({self.members} held by members, {self.pending} reserved by pending invitations)"
            )
        return text


def seat_usage(*, account: Account, now, exclude_invitation_id: int | None = None) -> SeatUsage:
    members = Membership.objects.filter(account=account, is_active=True, has_seat=True).count()
    pending = Invitation.objects.filter(
        account=account, status=Invitation.Status.PENDING, with_seat=True, expires_at__gt=now
    )
    if exclude_invitation_id:
        pending = pending.exclude(pk=exclude_invitation_id)
    return SeatUsage(paid=account.seats_paid, members=members, pending=pending.count())


def membership_list_for_user(*, user):
    """The user's active memberships with their accounts, for the switcher."""
    return (
        Membership.objects.filter(user=user, is_active=True)
        .select_related("account")
        .order_by("account__name", "account_id")
    )


def _count_per_account(queryset):
    counted = queryset.values("account").annotate(n=Count("pk")).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


def membership_list_with_seat_usage(*, user, now):
    """The user's memberships, each with `seat_usage` of its account, in one query."""
    memberships = membership_list_for_user(user=user).annotate(
        seats_members=_count_per_account(
            Membership.objects.filter(account=OuterRef("account"), is_active=True, has_seat=True)
        ),
        seats_pending=_count_per_account(
            Invitation.objects.filter(
                account=OuterRef("account"),
                status=Invitation.Status.PENDING,
                with_seat=True,
                expires_at__gt=now,
            )
        ),
    )
    for membership in memberships:
        membership.seat_usage = SeatUsage(
            paid=membership.account.seats_paid,
            members=membership.seats_members,
            pending=membership.seats_pending,
        )
        yield membership


def account_get_for_user(*, user, account_id) -> tuple[Account, Membership]:
    """The account and the user's membership in it; 404 if they are not an active member."""
    membership = (
        Membership.objects.filter(user=user, account_id=account_id, is_active=True)
        .select_related("account", "account__reseller")
        .first()
    )
    if membership is None:
        raise Http404("No such account.")
    return membership.account, membership


def member_list(*, account: Account):
    return (
        Membership.objects.filter(account=account)
        .select_related("user")
        .order_by("-is_active", "user__full_name", "user__email")
    )


def seat_holder_list(*, account: Account):
    return member_list(account=account).filter(is_active=True, has_seat=True)


def member_get(*, account: Account, membership_id) -> Membership:
    membership = (
        Membership.objects.filter(account=account, pk=membership_id).select_related("user").first()
    )
    if membership is None:
        raise Http404("No such member.")
    return membership


def support_contact_get(*, account: Account) -> Membership | None:
    return (
        Membership.objects.filter(account=account, is_support_contact=True)
        .select_related("user")
        .first()
    )


def invitation_list(*, account: Account, now):
    """Invitations still waiting for an answer (expired ones are shown as such)."""
    return (
        Invitation.objects.filter(account=account, status=Invitation.Status.PENDING)
        .select_related("invited_by")
        .order_by("-created_at")
    )


def invitation_get(*, account: Account, invitation_id) -> Invitation:
    invitation = Invitation.objects.filter(account=account, pk=invitation_id).first()
    if invitation is None:
        raise Http404("No such invitation.")
    return invitation


def login_exists_for_email(*, email: str) -> bool:
    """Whether some login already owns this address, as its login or a secondary address."""
    from allauth.account.models import EmailAddress

    return (
        User.objects.filter(email__iexact=email).exists()
        or EmailAddress.objects.filter(email__iexact=email).exists()
    )


def invitation_get_by_token(*, token: str) -> Invitation | None:
    from .services import invitation_from_token

    return invitation_from_token(token)


def member_counts(*, account: Account) -> dict:
    return Membership.objects.filter(account=account).aggregate(
        active=Count("pk", filter=Q(is_active=True)),
        inactive=Count("pk", filter=Q(is_active=False)),
    )


BILLING_ROLES = (Membership.Role.OWNER, Membership.Role.BILLING_ADMIN)


def billing_accounts_q(*, user, prefix: str = "") -> Q:
    """Rows (reached through `prefix`) of accounts where `user` acts on billing."""
    return Q(
        **{
            f"{prefix}memberships__user": user,
            f"{prefix}memberships__is_active": True,
            f"{prefix}memberships__role__in": BILLING_ROLES,
        }
    )


def billing_account_ids(*, users) -> dict[int, set[int]]:
    """For each of `users`, the ids of the accounts whose billing they act on: one query
    for all of them (a batch of mails reads its senders' at once)."""
    found: dict[int, set[int]] = {user.pk: set() for user in users}
    for user_id, account_id in Membership.objects.filter(
        user__in=list(users), is_active=True, role__in=BILLING_ROLES
    ).values_list("user_id", "account_id"):
        found[user_id].add(account_id)
    return found


def acts_on_billing(*, user, account: Account) -> bool:
    """Owners and billing admins act on an account's billing (and ask for its refunds)."""
    return Membership.objects.filter(
        account=account, user=user, is_active=True, role__in=BILLING_ROLES
    ).exists()


# Reminder mails an owner or billing admin may turn off in Profile.
REMINDER_MAILS = {
    "trial_ending": "A trial ends (3 days before and on its last day)",
    "renewal_coming": "A yearly renewal is coming (30 days before)",
    "support_expiring": "On-premise support expires (90, 30 and 7 days before)",
    "card_expiring": "The card on file expires next month",
    "usage_cap": "Usage reaches 80% and 100% of a cap",
}


def billing_mail_recipients(*, account: Account, kind: str | None = None) -> list[str]:
    """The owners' and billing admins' addresses, without those who turned `kind` off."""
    rows = (
        Membership.objects.filter(account=account, is_active=True, role__in=BILLING_ROLES)
        .select_related("user")
        .order_by("pk")
    )
    return [m.user.email for m in rows if kind is None or kind not in (m.user.mail_off or [])]
