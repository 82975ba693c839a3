"""Every state change of accounts, memberships, seats and invitations.

One function per use case: keyword arguments with the acting user, atomic, the
account row locked where seats or roles are counted, a return without writing
when nothing changes, and the audit row written in the same transaction. Mail
goes out through Celery once the transaction has committed.
"""

import secrets
import unicodedata
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac
from rest_framework.authtoken.models import Token

from core import outbox

from . import selectors
from .converters import parse_id
from .errors import NotAllowed, PortalError, SeatLimitError
from .models import CURRENCIES, Account, AuditEvent, Invitation, Membership, User, validate_timezone
from .request_context import client_ip

Role = Membership.Role


# --- audit ---------------------------------------------------------------------------


@dataclass
class _AuditBatch:
    depth: int  # how many atomic blocks were open when it began
    events: list[AuditEvent]


# The open audit_batch(), if any: its rows are written together when it ends.
_BATCH: ContextVar[_AuditBatch | None] = ContextVar("audit_batch", default=None)


def audit_record(*, actor, action: str, target, account=None, changes=None) -> AuditEvent:
    """Write the audit row for a change; call inside the change's transaction. Inside
    audit_batch() the row is written when the batch ends (its pk is unset until then)."""
    event = AuditEvent(
        actor=actor if actor is not None and actor.pk else None,
        actor_email=getattr(actor, "email", "") or "",
        account=account,
        action=action,
        object_type=target._meta.label_lower,
        object_id=str(target.pk),
        object_repr=str(target)[:300],
        changes=changes or {},
        ip_address=client_ip.get(),
    )
    batch = _BATCH.get()
    # Inside an atomic block opened within the batch, the row is written now: a savepoint
    # rolled back must take its audit rows with it.
    if batch is not None and len(transaction.get_connection().atomic_blocks) == batch.depth:
        batch.events.append(event)
    else:
        event.save(force_insert=True)
    return event


@contextmanager
def audit_batch():
    """Open inside a change's transaction: the audit rows recorded directly in it (not in
    a savepoint within) are written in one INSERT when the block ends without an error,
    still in the transaction: the same rows, in the order recorded, each with the time it
    was recorded. On an error none is written, as the transaction rolls back. A batch
    within a batch leaves the rows to the outer one."""
    atomic_blocks = transaction.get_connection().atomic_blocks
    if not atomic_blocks:
        raise RuntimeError("audit_batch() needs the change's transaction around it")
    if _BATCH.get() is not None:
        yield
        return
    batch = _AuditBatch(depth=len(atomic_blocks), events=[])
    token = _BATCH.set(batch)
    try:
        yield
    finally:
        _BATCH.reset(token)
    if batch.events:
        AuditEvent.objects.bulk_create(batch.events)


def staff_object_save(*, actor, obj, form=None, changed_fields=(), created=False):
    """Save an object edited in the staff console and audit what changed."""
    changes = {}
    model_fields = {f.name for f in obj._meta.get_fields()}
    for field in changed_fields:
        if field not in model_fields:
            continue  # form-only inputs (password1, password2...) are never recorded
        if "password" in field:
            changes[field] = "changed"
            continue
        old = form.initial.get(field) if form is not None else None
        new = form.cleaned_data.get(field) if form is not None else getattr(obj, field, None)
        changes[field] = [_plain(old), _plain(new)]
    with transaction.atomic():
        if created:
            obj.save()
        else:
            obj.save(update_fields=[f for f in changed_fields if f in model_fields] or None)
        account = obj if isinstance(obj, Account) else getattr(obj, "account", None)
        verb = "created" if created else "changed"
        audit_record(
            actor=actor,
            action=f"{obj._meta.model_name}.{verb}_by_staff",
            target=obj,
            account=account if isinstance(account, Account) else None,
            changes=changes,
        )
    return obj


def _plain(value):
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if hasattr(value, "pk"):
        return str(value)
    return str(value)


# --- authorization -------------------------------------------------------------------


def _require_owner(*, actor, account: Account) -> None:
    """Only owners manage members, roles, seats and the support contact.

    Vendor staff acting from the console with the matching permission may too.
    """
    if actor is None:
        raise NotAllowed("Sign in to manage this account.")
    if actor.is_staff and actor.has_perm("accounts.change_membership"):
        return
    is_owner = Membership.objects.filter(
        account=account, user=actor, is_active=True, role=Role.OWNER
    ).exists()
    if not is_owner:
        raise NotAllowed("Only an owner of the account can manage its users and seats.")


def _lock_account(account: Account) -> Account:
    return Account.objects.select_for_update(no_key=True).get(pk=account.pk)


def _lock_membership(membership: Membership) -> Membership:
    return (
        Membership.objects.select_for_update(no_key=True)
        .select_related("user")
        .get(pk=membership.pk)
    )


def _seat_limit_error(
    usage: selectors.SeatUsage, hint: str, field: str, account: Account
) -> SeatLimitError:
    held = f"{usage.members} held by members"
    if usage.pending:
        held += f", {usage.pending} reserved by pending invitations"
    return SeatLimitError(
        f"No licensed seat is free: {usage.used} of {usage.paid} seats are in use ({held}). "
        f"{_where_to_add_seats(account)}, or take a seat from someone who no longer "
        f"needs it.{hint}",
        field=field,
    )


def _where_to_add_seats(account: Account) -> str:
    if account.reseller_id:
        return f"Ask {account.reseller.name}, through whom you bought, for more seats"
    return "Add seats under Account Settings > Billing"


def _require_free_seat(
    *, account: Account, now, field: str, exclude_invitation_id=None, hint=""
) -> None:
    """Refuse, naming the input `field` that asked for the seat, when none is free."""
    for guard in SEAT_GUARDS:
        refusal = guard(account)
        if refusal:
            raise PortalError(refusal, field=field)
    usage = selectors.seat_usage(
        account=account, now=now, exclude_invitation_id=exclude_invitation_id
    )
    if usage.used >= usage.paid:
        raise _seat_limit_error(usage, hint, field, account)


def _is_last_owner(membership: Membership) -> bool:
    if membership.role != Role.OWNER or not membership.is_active:
        return False
    others = (
        Membership.objects.filter(account_id=membership.account_id, role=Role.OWNER, is_active=True)
        .exclude(pk=membership.pk)
        .exists()
    )
    return not others


def _validate_role(role) -> str:
    if role not in Role.values:
        raise PortalError(
            f"“{role}” is not a role; choose one of {', '.join(Role.values)}.", field="role"
        )
    return role


def clean_text(value, *, field: str, label: str, max_length: int, required: bool = True) -> str:
    """A one-line name: trimmed, no control characters (they break mail headers)."""
    text = (value or "").strip()
    if required and not text:
        raise PortalError(f"Give {label}.", field=field)
    if len(text) > max_length:
        raise PortalError(
            f"{label.capitalize()} can be at most {max_length} characters.", field=field
        )
    if any(unicodedata.category(ch).startswith("C") for ch in text):
        raise PortalError(
            f"{label.capitalize()} cannot contain line breaks or control characters.", field=field
        )
    return text


# --- accounts ------------------------------------------------------------------------


def account_create(
    *,
    owner: User,
    name: str,
    timezone_name: str = "UTC",
    currency: str = "USD",
    seats_paid: int = 1,
    reseller=None,
) -> Account:
    """A new customer account whose creator is its owner, seat holder and support contact."""
    name = clean_text(name, field="name", label="the company's name", max_length=200)
    try:
        validate_timezone(timezone_name)
    except ValidationError as exc:
        raise PortalError(exc.messages[0], field="timezone") from exc
    if currency not in CURRENCIES:
        raise PortalError(
            f"“{currency}” is not a billing currency; choose one of {', '.join(CURRENCIES)}.",
            field="currency",
        )
    with transaction.atomic():
        account = Account.objects.create(
            name=name,
            timezone=timezone_name,
            currency=currency,
            seats_paid=max(seats_paid, 1),
            reseller=reseller,
        )
        Membership.objects.create(
            account=account, user=owner, role=Role.OWNER, has_seat=True, is_support_contact=True
        )
        audit_record(
            actor=owner,
            action="account.created",
            target=account,
            account=account,
            changes={"name": name, "timezone": timezone_name, "currency": currency},
        )
    return account


# One table of the account statuses staff may move between (the licence screen is
# billing's to set and lift once subscriptions exist; 1CRM terms).
ACCOUNT_STATUS_TRANSITIONS = {
    Account.Status.ACTIVE: {
        Account.Status.LICENSE_SCREEN,
        Account.Status.SUSPENDED_TOS,
        Account.Status.DEACTIVATED,
    },
    Account.Status.LICENSE_SCREEN: {
        Account.Status.ACTIVE,
        Account.Status.SUSPENDED_TOS,
        Account.Status.DEACTIVATED,
    },
    Account.Status.SUSPENDED_TOS: {Account.Status.ACTIVE, Account.Status.DEACTIVATED},
    Account.Status.DEACTIVATED: {Account.Status.ACTIVE},
}


def account_status_refusal(*, current: str, new: str, account: Account | None = None) -> str | None:
    if new == current:
        return None
    if new not in Account.Status.values:
        return f"“{new}” is not an account status."
    if new not in ACCOUNT_STATUS_TRANSITIONS[current]:
        return (
            f"An account cannot go from {Account.Status(current).label} to "
            f"{Account.Status(new).label}."
        )
    if account is not None and new == Account.Status.ACTIVE:
        return next(filter(None, (guard(account) for guard in ACTIVATION_GUARDS)), None)
    return None


# Apps that own an account's seats paid (billing, once a plan exists) register a
# check here; accounts never imports them.
SEATS_PAID_OWNERS: list = []
# Checks an app registers against making an account active (billing: a lapsed plan
# keeps it on the licence screen until the renewal is paid).
ACTIVATION_GUARDS: list = []
# Checks an app registers against giving anyone a seat (billing: on-premise, no user is
# added or activated without an active support contract).
SEAT_GUARDS: list = []


def seats_paid_refusal(*, account: Account, seats_paid: int, now) -> str | None:
    for owner in SEATS_PAID_OWNERS:
        refusal = owner(account)
        if refusal:
            return refusal
    if seats_paid < 1:
        return "An account has at least one seat."
    usage = selectors.seat_usage(account=account, now=now)
    if seats_paid < usage.used:
        return (
            f"{usage.describe()}; take seats from members or withdraw invitations before "
            f"lowering the seats paid to {seats_paid}."
        )
    return None


def require_staff(actor, perm: str) -> None:
    if actor is None or not (actor.is_staff and actor.has_perm(perm)):
        raise NotAllowed("Only vendor staff can do this.")


def account_set_licence_screen(
    *, account: Account, on: bool, reason: str, actor=None, locked: bool = False
) -> Account:
    """Billing puts an account on the licence screen when its plan lapses, and lifts it
    when a renewal is paid (1CRM terms: the system stays on the licence screen awaiting
    an updated licence). Suspended or deactivated accounts are left as they are.

    `locked`: `account` is the row the caller locked in its open transaction (and has
    not changed behind it): it is used as it is, with no second lock or savepoint."""
    if locked:
        if not transaction.get_connection().in_atomic_block:
            raise RuntimeError("locked=True needs the caller's transaction around it")
        return _set_licence_screen(account, on=on, reason=reason, actor=actor)
    with transaction.atomic():
        return _set_licence_screen(_lock_account(account), on=on, reason=reason, actor=actor)


def _set_licence_screen(account: Account, *, on: bool, reason: str, actor) -> Account:
    new = Account.Status.LICENSE_SCREEN if on else Account.Status.ACTIVE
    expected = Account.Status.ACTIVE if on else Account.Status.LICENSE_SCREEN
    if account.status == expected:
        _write_status(account, new, actor=actor, reason=reason)
    return account


def accounts_set_licence_screen_locked(*, accounts: list[tuple[Account, str]], actor=None):
    """account_set_licence_screen(on=True, locked=True) for several accounts, each with
    its reason, that the caller locked in its open transaction (a chunk of renewals):
    those still active go on the licence screen, their status written in one UPDATE and
    each audited. An account listed twice moves once, with its first reason."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("accounts_set_licence_screen_locked needs the caller's transaction")
    moving: dict[int, tuple[Account, str]] = {}
    for account, reason in accounts:
        if account.status == Account.Status.ACTIVE and account.pk not in moving:
            moving[account.pk] = (account, reason)
    if not moving:
        return
    new = Account.Status.LICENSE_SCREEN
    Account.objects.filter(pk__in=list(moving)).update(status=new)
    for account, reason in moving.values():
        _write_status(account, new, actor=actor, reason=reason, saved=True)


def _write_status(
    account: Account, status: str, *, actor, reason: str | None = None, saved: bool = False
) -> None:
    """The one audited write of an account's status; the caller holds its lock and checked
    (`saved`: the caller has written the new status to the row already)."""
    changes = {"status": [account.status, status]}
    if reason:
        changes["reason"] = reason
    account.status = status
    if not saved:
        account.save(update_fields=["status"])
    audit_record(
        actor=actor,
        action="account.status_changed",
        target=account,
        account=account,
        changes=changes,
    )


def account_set_status(*, actor, account: Account, status: str) -> Account:
    with transaction.atomic():
        account = _lock_account(account)
        require_staff(actor, "accounts.change_account")
        refusal = account_status_refusal(current=account.status, new=status, account=account)
        if refusal:
            raise PortalError(refusal, field="status")
        if account.status == status:
            return account
        _write_status(account, status, actor=actor)
    return account


def account_deactivate(*, account: Account, reason: str, actor=None) -> Account:
    """Deactivate an account for a reason another app owns (a processed SaaS refund,
    acelle §5). Already deactivated: nothing changes."""
    with transaction.atomic():
        account = _lock_account(account)
        if account.status == Account.Status.DEACTIVATED:
            return account
        refusal = account_status_refusal(current=account.status, new=Account.Status.DEACTIVATED)
        if refusal:
            raise PortalError(refusal, field="status")
        _write_status(account, Account.Status.DEACTIVATED, actor=actor, reason=reason)
    return account


def account_set_seats_paid(*, actor, account: Account, seats_paid: int, now=None) -> Account:
    """Staff set the seats paid until billing owns the number."""
    now = now or timezone.now()
    with transaction.atomic():
        account = _lock_account(account)
        require_staff(actor, "accounts.change_account")
        if account.seats_paid == seats_paid:
            return account
        refusal = seats_paid_refusal(account=account, seats_paid=seats_paid, now=now)
        if refusal:
            raise PortalError(refusal, field="seats_paid")
        old = account.seats_paid
        account.seats_paid = seats_paid
        account.save(update_fields=["seats_paid"])
        audit_record(
            actor=actor,
            action="account.seats_paid_changed",
            target=account,
            account=account,
            changes={"seats_paid": [old, seats_paid]},
        )
    return account


# --- memberships ---------------------------------------------------------------------


def membership_set_role(*, actor, membership: Membership, role: str) -> Membership:
    role = _validate_role(role)
    with transaction.atomic():
        _lock_account(membership.account)
        membership = _lock_membership(membership)
        _require_owner(actor=actor, account=membership.account)
        if membership.role == role:
            return membership
        if not membership.is_active:
            raise PortalError(
                f"{membership.user.email} is deactivated; reactivate them first.", field="role"
            )
        if role != Role.OWNER and _is_last_owner(membership):
            raise PortalError(
                f"{membership.user.email} is the only owner; make someone else an owner first.",
                field="role",
            )
        old = membership.role
        membership.role = role
        membership.save(update_fields=["role"])
        audit_record(
            actor=actor,
            action="membership.role_changed",
            target=membership,
            account=membership.account,
            changes={"role": [old, role]},
        )
    return membership


def membership_set_seat(*, actor, membership: Membership, has_seat: bool, now=None) -> Membership:
    now = now or timezone.now()
    with transaction.atomic():
        account = _lock_account(membership.account)
        membership = _lock_membership(membership)
        _require_owner(actor=actor, account=account)
        if membership.has_seat == has_seat:
            return membership
        if has_seat:
            if not membership.is_active:
                raise PortalError(
                    f"{membership.user.email} is deactivated; reactivate them with a seat instead.",
                    field="seat",
                )
            _require_free_seat(account=account, now=now, field="has_seat")
        membership.has_seat = has_seat
        membership.save(update_fields=["has_seat"])
        audit_record(
            actor=actor,
            action="membership.seat_given" if has_seat else "membership.seat_taken",
            target=membership,
            account=account,
            changes={"has_seat": [not has_seat, has_seat]},
        )
    return membership


def membership_update(
    *, actor, membership: Membership, role: str | None = None, has_seat: bool | None = None
) -> Membership:
    """Change role and seat together: both happen, or neither does."""
    with transaction.atomic():
        if role is not None:
            membership = membership_set_role(actor=actor, membership=membership, role=role)
        if has_seat is not None:
            membership = membership_set_seat(actor=actor, membership=membership, has_seat=has_seat)
    return membership


def membership_deactivate(*, actor, membership: Membership, now=None) -> Membership:
    now = now or timezone.now()
    with transaction.atomic():
        account = _lock_account(membership.account)
        membership = _lock_membership(membership)
        _require_owner(actor=actor, account=account)
        if not membership.is_active:
            return membership
        if membership.is_support_contact:
            raise PortalError(
                f"{membership.user.email} is the designated support contact; "
                "choose another support contact first."
            )
        if _is_last_owner(membership):
            raise PortalError(
                f"{membership.user.email} is the only owner; make someone else an owner first."
            )
        had_seat = membership.has_seat
        membership.is_active = False
        membership.has_seat = False
        membership.deactivated_at = now
        membership.save(update_fields=["is_active", "has_seat", "deactivated_at"])
        audit_record(
            actor=actor,
            action="membership.deactivated",
            target=membership,
            account=account,
            changes={"is_active": [True, False], "has_seat": [had_seat, False]},
        )
    return membership


def membership_reactivate(
    *, actor, membership: Membership, with_seat: bool = True, now=None
) -> Membership:
    now = now or timezone.now()
    with transaction.atomic():
        account = _lock_account(membership.account)
        membership = _lock_membership(membership)
        _require_owner(actor=actor, account=account)
        if membership.is_active:
            return membership
        if with_seat:
            _require_free_seat(account=account, now=now, field="with_seat")
        membership.is_active = True
        membership.has_seat = with_seat
        membership.deactivated_at = None
        membership.save(update_fields=["is_active", "has_seat", "deactivated_at"])
        audit_record(
            actor=actor,
            action="membership.reactivated",
            target=membership,
            account=account,
            changes={"is_active": [False, True], "has_seat": [False, with_seat]},
        )
    return membership


def support_contact_set(*, actor, account: Account, membership: Membership) -> Membership:
    """Make `membership` the account's single designated support contact (1CRM terms)."""
    with transaction.atomic():
        account = _lock_account(account)
        _require_owner(actor=actor, account=account)
        if membership.account_id != account.pk:
            raise PortalError("That person is not a member of this account.", field="membership")
        membership = _lock_membership(membership)
        if not membership.is_active:
            raise PortalError(
                f"{membership.user.email} is deactivated; the support contact must be an active "
                "member.",
                field="membership",
            )
        if membership.is_support_contact:
            return membership
        previous = (
            Membership.objects.select_for_update(no_key=True)
            .select_related("user")
            .filter(account=account, is_support_contact=True)
            .first()
        )
        if previous is not None:
            previous.is_support_contact = False
            previous.save(update_fields=["is_support_contact"])
        membership.is_support_contact = True
        membership.save(update_fields=["is_support_contact"])
        audit_record(
            actor=actor,
            action="account.support_contact_changed",
            target=account,
            account=account,
            changes={
                "support_contact": [
                    previous.user.email if previous else None,
                    membership.user.email,
                ]
            },
        )
    return membership


# --- invitations ---------------------------------------------------------------------


_TOKEN_SALT = "accounts.invitation"  # noqa: S105 - an HMAC salt, not a secret


def invitation_token(invitation: Invitation) -> str:
    """The secret part of the invitation link; recomputed, never stored."""
    value = f"{invitation.pk}:{invitation.nonce}:{invitation.expires_at.timestamp()}"
    signature = salted_hmac(_TOKEN_SALT, value, algorithm="sha256").hexdigest()
    return f"{invitation.pk}.{signature}"


def invitation_from_token(token: str) -> Invitation | None:
    invitation_id, _, signature = (token or "").partition(".")
    if parse_id(invitation_id) is None or not signature:
        return None
    invitation = (
        Invitation.objects.filter(pk=int(invitation_id))
        .select_related("account", "invited_by")
        .first()
    )
    if invitation is None or not constant_time_compare(invitation_token(invitation), token):
        return None
    return invitation


def _normalize_email(email) -> str:
    email = (email or "").strip().lower()
    if len(email) > 254:
        raise PortalError("An email address can be at most 254 characters.", field="email")
    try:
        validate_email(email)
    except ValidationError as exc:
        raise PortalError(f"“{email}” is not a valid email address.", field="email") from exc
    return email


def _new_link(invitation: Invitation, now) -> None:
    invitation.nonce = secrets.token_hex(16)
    invitation.expires_at = now + timedelta(days=settings.INVITATION_TTL_DAYS)
    invitation.sent_at = None


def _send_invitation_on_commit(invitation: Invitation) -> None:
    from .tasks import send_invitation_email

    # Only the id and the nonce travel through the broker, never the token.
    outbox.enqueue(send_invitation_email, invitation.pk, invitation.nonce)


def invitation_create(
    *,
    actor,
    account: Account,
    email: str,
    role: str = Role.MEMBER,
    with_seat: bool = True,
    now=None,
) -> tuple[Invitation, str]:
    """Invite someone by email; a licensed invitation reserves a seat until it ends."""
    now = now or timezone.now()
    email = _normalize_email(email)
    role = _validate_role(role)
    with transaction.atomic():
        account = _lock_account(account)
        _require_owner(actor=actor, account=account)
        existing = (
            Membership.objects.filter(account=account, user__email__iexact=email)
            .select_related("user")
            .first()
        )
        if existing is not None:
            if existing.is_active:
                raise PortalError(f"{email} is already a member of {account.name}.", field="email")
            raise PortalError(
                f"{email} was a member and is deactivated; reactivate them from the list instead.",
                field="email",
            )
        pending = Invitation.objects.filter(
            account=account, email__iexact=email, status=Invitation.Status.PENDING
        ).first()
        if pending is not None:
            if pending.expires_at > now:
                raise PortalError(
                    f"{email} already has an invitation waiting until "
                    f"{pending.expires_at:%d %B %Y}; resend it from the list if it was lost.",
                    field="email",
                )
            _invitation_mark_expired(pending)
        if with_seat:
            _require_free_seat(
                account=account,
                now=now,
                field="with_seat",
                hint=" You can also invite them without a seat.",
            )
        invitation = Invitation(
            account=account, email=email, role=role, with_seat=with_seat, invited_by=actor
        )
        _new_link(invitation, now)
        invitation.created_at = now
        invitation.save()
        audit_record(
            actor=actor,
            action="invitation.created",
            target=invitation,
            account=account,
            changes={"email": email, "role": role, "with_seat": with_seat},
        )
        _send_invitation_on_commit(invitation)
    return invitation, invitation_token(invitation)


def invitation_resend(*, actor, invitation: Invitation, now=None) -> tuple[Invitation, str]:
    """A new link with a new expiry; the old link stops working."""
    now = now or timezone.now()
    with transaction.atomic():
        account = _lock_account(invitation.account)
        invitation = Invitation.objects.select_for_update(no_key=True).get(pk=invitation.pk)
        _require_owner(actor=actor, account=account)
        if invitation.status != Invitation.Status.PENDING:
            raise PortalError(f"This invitation is {invitation.get_status_display().lower()}.")
        if invitation.with_seat and invitation.expires_at <= now:
            # An expired invitation held no seat; it needs one again.
            _require_free_seat(account=account, now=now, field="with_seat")
        _new_link(invitation, now)
        invitation.save(update_fields=["nonce", "expires_at", "sent_at"])
        audit_record(
            actor=actor,
            action="invitation.resent",
            target=invitation,
            account=account,
            changes={"expires_at": invitation.expires_at.isoformat()},
        )
        _send_invitation_on_commit(invitation)
    return invitation, invitation_token(invitation)


def invitation_revoke(*, actor, invitation: Invitation) -> Invitation:
    with transaction.atomic():
        account = _lock_account(invitation.account)
        invitation = Invitation.objects.select_for_update(no_key=True).get(pk=invitation.pk)
        _require_owner(actor=actor, account=account)
        if invitation.status == Invitation.Status.REVOKED:
            return invitation
        if invitation.status != Invitation.Status.PENDING:
            raise PortalError(
                f"This invitation is {invitation.get_status_display().lower()} and can no longer "
                "be withdrawn."
            )
        invitation.status = Invitation.Status.REVOKED
        invitation.save(update_fields=["status"])
        audit_record(
            actor=actor,
            action="invitation.revoked",
            target=invitation,
            account=account,
            changes={"status": ["pending", "revoked"]},
        )
    return invitation


def _invitation_refusal(invitation: Invitation, now) -> PortalError | None:
    status = invitation.effective_status(now)
    if status == Invitation.Status.ACCEPTED:
        return PortalError("This invitation has already been used.", code="used")
    if status == Invitation.Status.REVOKED:
        return PortalError("This invitation was withdrawn by the account's owner.", code="revoked")
    if status == Invitation.Status.EXPIRED:
        inviter = invitation.invited_by.email if invitation.invited_by else "the account's owner"
        return PortalError(
            f"This invitation expired on {invitation.expires_at:%d %B %Y}. "
            f"Ask {inviter} to send a new one.",
            code="expired",
        )
    return None


def invitation_check(*, invitation: Invitation, now=None) -> None:
    """Raise the reason an invitation can no longer be accepted, if there is one."""
    refusal = _invitation_refusal(invitation, now or timezone.now())
    if refusal is not None:
        raise refusal


def invitation_accept(*, invitation: Invitation, user: User, now=None) -> Membership:
    """Add the invited account to the user's login. The user's email must be the invited one."""
    from allauth.account.models import EmailAddress

    now = now or timezone.now()
    with transaction.atomic():
        account = _lock_account(invitation.account)
        # Lock the invitation row only: PostgreSQL cannot lock the nullable side of
        # the outer join to `invited_by`.
        invitation = (
            Invitation.objects.select_for_update(of=("self",), no_key=True)
            .select_related("invited_by")
            .get(pk=invitation.pk)
        )
        refusal = _invitation_refusal(invitation, now)
        if refusal is not None:
            raise refusal
        if user.email.lower() != invitation.email.lower():
            raise PortalError(
                f"This invitation was sent to {invitation.email}, and you are signed in as "
                f"{user.email}. Sign out and open the link again to accept it with the invited "
                "address.",
                code="wrong_email",
            )
        # The seat this invitation reserved is its own; if seats were reduced since,
        # the person joins without one and an owner can give one later.
        with_seat = invitation.with_seat
        if with_seat:
            usage = selectors.seat_usage(
                account=account, now=now, exclude_invitation_id=invitation.pk
            )
            # Nor does anyone take a seat that a guard refuses (on-premise without
            # active support, say).
            with_seat = usage.used < usage.paid and not any(guard(account) for guard in SEAT_GUARDS)
        membership = Membership.objects.filter(account=account, user=user).first()
        already_member = membership is not None and membership.is_active
        if membership is None:
            membership = Membership.objects.create(
                account=account, user=user, role=invitation.role, has_seat=with_seat, created_at=now
            )
        elif not membership.is_active:
            membership.is_active = True
            membership.role = invitation.role
            membership.has_seat = with_seat
            membership.deactivated_at = None
            membership.save(update_fields=["is_active", "role", "has_seat", "deactivated_at"])
        invitation.status = Invitation.Status.ACCEPTED
        invitation.accepted_at = now
        invitation.accepted_by = user
        invitation.save(update_fields=["status", "accepted_at", "accepted_by"])
        # Opening the link proved the address belongs to them.
        EmailAddress.objects.filter(user=user, email__iexact=invitation.email).update(verified=True)
        if already_member:
            audit_record(
                actor=user,
                action="invitation.accepted_by_member",
                target=invitation,
                account=account,
                changes={"status": ["pending", "accepted"]},
            )
        else:
            audit_record(
                actor=user,
                action="membership.joined",
                target=membership,
                account=account,
                changes={
                    "invitation": invitation.pk,
                    "role": membership.role,
                    "has_seat": with_seat,
                },
            )
    return membership


def user_signup_from_invitation(
    *, invitation: Invitation, full_name: str, password: str, now=None
) -> tuple[User, Membership]:
    """Create the login of an invited person and accept the invitation with it."""
    from allauth.account.models import EmailAddress

    now = now or timezone.now()
    invitation_check(invitation=invitation, now=now)
    email = invitation.email.lower()
    if selectors.login_exists_for_email(email=email):
        raise PortalError(
            f"There is already a login for {email}; sign in to accept the invitation.",
            field="email",
            code="exists",
        )
    candidate = User(
        email=email,
        full_name=clean_text(full_name, field="full_name", label="your name", max_length=150),
    )
    try:
        password_validation.validate_password(password, user=candidate)
    except ValidationError as exc:
        raise PortalError(" ".join(exc.messages), field="password") from exc
    try:
        with transaction.atomic():
            user = User.objects.create_user(
                email=email, password=password, full_name=candidate.full_name
            )
            EmailAddress.objects.create(user=user, email=email, primary=True, verified=True)
            audit_record(
                actor=user, action="user.signed_up", target=user, changes={"via": "invitation"}
            )
            membership = invitation_accept(invitation=invitation, user=user, now=now)
    except IntegrityError as exc:  # the same address signed up a moment ago
        raise PortalError(
            f"There is already a login for {email}; sign in to accept the invitation.",
            field="email",
            code="exists",
        ) from exc
    return user, membership


def _invitation_mark_expired(invitation: Invitation) -> None:
    invitation.status = Invitation.Status.EXPIRED
    invitation.save(update_fields=["status"])
    audit_record(
        actor=None,
        action="invitation.expired",
        target=invitation,
        account=invitation.account,
        changes={"status": ["pending", "expired"]},
    )


def invitations_expire(*, now=None) -> int:
    """Record every pending invitation past its expiry as expired, and tell the inviter."""
    from .tasks import send_invitation_expired_email

    now = now or timezone.now()
    expired = 0
    due = Invitation.objects.filter(status=Invitation.Status.PENDING, expires_at__lte=now)
    for pk in due.values_list("pk", flat=True):
        with transaction.atomic():
            invitation = (
                Invitation.objects.select_for_update(of=("self",), no_key=True)
                .select_related("account")
                .filter(pk=pk, status=Invitation.Status.PENDING, expires_at__lte=now)
                .first()
            )
            if invitation is None:
                continue  # accepted, revoked or resent meanwhile
            _invitation_mark_expired(invitation)
            if invitation.invited_by_id:
                outbox.enqueue(send_invitation_expired_email, invitation.pk)
            expired += 1
    return expired


# --- users ---------------------------------------------------------------------------


def user_set_mail_off(*, user: User, kinds) -> User:
    """The reminder mails the user does not want (receipts and failed payments always go)."""
    kinds = sorted(set(kinds))
    unknown = [kind for kind in kinds if kind not in selectors.REMINDER_MAILS]
    if unknown:
        raise PortalError(f"“{unknown[0]}” is not a reminder mail.", field="mail_off")
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user.pk)
        if sorted(user.mail_off or []) == kinds:
            return user
        old = user.mail_off
        user.mail_off = kinds
        user.save(update_fields=["mail_off"])
        audit_record(
            actor=user,
            action="user.mail_preferences",
            target=user,
            changes={"mail_off": [old, kinds]},
        )
    return user


def user_update_profile(*, user: User, full_name: str) -> User:
    full_name = clean_text(
        full_name, field="full_name", label="your name", max_length=150, required=False
    )
    with transaction.atomic():
        user = User.objects.select_for_update(no_key=True).get(pk=user.pk)
        if user.full_name == full_name:
            return user
        old = user.full_name
        user.full_name = full_name
        user.save(update_fields=["full_name"])
        audit_record(
            actor=user,
            action="user.profile_updated",
            target=user,
            changes={"full_name": [old, full_name]},
        )
    return user


def api_token_rotate(*, user: User) -> Token:
    """Replace the user's API token; the old one stops working at once."""
    with transaction.atomic():
        User.objects.select_for_update(no_key=True).get(pk=user.pk)  # one rotation at a time
        had = Token.objects.filter(user=user).delete()[0] > 0
        token = Token.objects.create(user=user)
        audit_record(
            actor=user,
            action="user.api_token_rotated" if had else "user.api_token_created",
            target=user,
        )
    return token


def api_token_revoke(*, user: User) -> None:
    with transaction.atomic():
        if Token.objects.filter(user=user).delete()[0]:
            audit_record(actor=user, action="user.api_token_revoked", target=user)
