"""Users, customer accounts, memberships with roles and seats, invitations, audit."""

import functools
import zoneinfo

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone as dj_timezone

# ISO 4217 codes the portal bills in, with their minor units (used by billing).
CURRENCIES = {"USD": 2, "EUR": 2, "GBP": 2, "CAD": 2, "AUD": 2, "JPY": 0, "VND": 0}


@functools.cache
def known_timezones() -> frozenset[str]:
    """The IANA zones of this machine; scanning them is slow, so once per process."""
    return frozenset(zoneinfo.available_timezones())


def validate_locale(value: str) -> None:
    from babel import Locale, UnknownLocaleError

    try:
        Locale.parse(value)
    except (ValueError, UnknownLocaleError) as exc:
        raise ValidationError(
            f"{value} is not a locale we know (for example en_US, de_DE)."
        ) from exc


def validate_timezone(value: str) -> None:
    if value not in known_timezones():
        raise ValidationError(
            f"“{value}” is not a known IANA time zone (for example Europe/Paris)."
        )


def timezone_choices():
    return [(tz, tz) for tz in sorted(known_timezones())]


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create_user(self, email, password, **extra_fields):
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra_fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email, password=None, **extra_fields):
        extra_fields.setdefault("is_staff", False)
        extra_fields.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra_fields)

    def create_superuser(self, email, password=None, **extra_fields):
        extra_fields.setdefault("is_staff", True)
        extra_fields.setdefault("is_superuser", True)
        return self._create_user(email, password, **extra_fields)

    def get_by_natural_key(self, username):
        return self.with_email(username).get()

    def with_email(self, email: str):
        """The user of this address, whatever its case."""
        return self.with_emails([email])

    def with_emails(self, emails):
        """The users of these addresses, whatever their case, found through the index of
        the lower-cased addresses (user_email_ci_unique), which `email__iexact` cannot
        use."""
        return self.alias(email_lower=Lower("email")).filter(
            email_lower__in={email.lower() for email in emails}
        )


class User(AbstractBaseUser, PermissionsMixin):
    """A person who signs in with their email address."""

    email = models.EmailField("email address", max_length=254, unique=True)
    full_name = models.CharField(max_length=150, blank=True)
    # Reminder mails the user turned off (accounts.selectors.REMINDER_MAILS); receipts,
    # credit notes and failed payments always go.
    mail_off = models.JSONField(default=list, blank=True)
    is_staff = models.BooleanField(
        default=False, help_text="Vendor staff: may sign in to the staff console."
    )
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(default=dj_timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = []

    class Meta:
        constraints = [models.UniqueConstraint(Lower("email"), name="user_email_ci_unique")]

    def __str__(self):
        return self.email

    def clean(self):
        super().clean()
        self.email = self.__class__.objects.normalize_email(self.email).lower()

    def get_full_name(self):
        return self.full_name or self.email

    def get_short_name(self):
        return self.full_name.split(" ")[0] if self.full_name else self.email


class Reseller(models.Model):
    """A partner through which an account bought; its billing and support are theirs."""

    name = models.CharField(max_length=200, unique=True)
    support_email = models.EmailField(blank=True)
    website = models.URLField(blank=True)
    created_at = models.DateTimeField(default=dj_timezone.now)

    def __str__(self):
        return self.name


class Account(models.Model):
    """The customer company."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        LICENSE_SCREEN = "license_screen", "Licence screen (subscription lapsed)"
        SUSPENDED_TOS = "suspended_tos", "Suspended (terms of service)"
        DEACTIVATED = "deactivated", "Deactivated"

    # Statuses in which the product is unusable: only Billing and Profile open.
    LOCKED_STATUSES = ("license_screen", "suspended_tos", "deactivated")

    name = models.CharField(max_length=200)
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    currency = models.CharField(max_length=3, default="USD", choices=[(c, c) for c in CURRENCIES])
    # How money and dates read on its pages and mails (a CLDR locale: en_US, de_DE, fr_FR).
    locale = models.CharField(max_length=16, default="en_US", validators=[validate_locale])
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.ACTIVE)
    reseller = models.ForeignKey(
        Reseller, null=True, blank=True, on_delete=models.PROTECT, related_name="accounts"
    )
    # Billing will own this number; for now it is set by staff and the demo data.
    seats_paid = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(default=dj_timezone.now)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(
                    status__in=["active", "license_screen", "suspended_tos", "deactivated"]
                ),
                name="account_status_valid",
            ),
        ]

    def __str__(self):
        return self.name

    @property
    def tzinfo(self):
        return zoneinfo.ZoneInfo(self.timezone)

    @property
    def email(self) -> str:
        """Where billing mail goes: the first owner's address. dj-stripe gives it to the
        account's Stripe customer (DJSTRIPE_SUBSCRIBER_MODEL is this model)."""
        owner = (
            self.memberships.filter(is_active=True, role=Membership.Role.OWNER)
            .select_related("user")
            .order_by("created_at", "id")
            .first()
        )
        return owner.user.email if owner else ""


class Membership(models.Model):
    """A user in an account, with a role and possibly a licensed seat."""

    class Role(models.TextChoices):
        OWNER = "owner", "Owner"
        BILLING_ADMIN = "billing_admin", "Billing admin"
        MEMBER = "member", "Member"

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.MEMBER)
    has_seat = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    is_support_contact = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=dj_timezone.now)
    deactivated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "user"], name="membership_unique_user"),
            # 1CRM terms: "a single designated support contact".
            models.UniqueConstraint(
                fields=["account"],
                condition=Q(is_support_contact=True),
                name="membership_one_support_contact",
            ),
            models.CheckConstraint(
                condition=~Q(is_support_contact=True, is_active=False),
                name="membership_support_contact_active",
            ),
            models.CheckConstraint(
                condition=~Q(has_seat=True, is_active=False),
                name="membership_seat_needs_active",
            ),
            models.CheckConstraint(
                condition=Q(role__in=["owner", "billing_admin", "member"]),
                name="membership_role_valid",
            ),
        ]
        indexes = [models.Index(fields=["account", "is_active", "has_seat"])]

    def __str__(self):
        return f"{self.user} in {self.account} ({self.get_role_display()})"

    @property
    def can_manage_members(self) -> bool:
        return self.is_active and self.role == self.Role.OWNER

    @property
    def can_see_billing(self) -> bool:
        return self.is_active and self.role in (self.Role.OWNER, self.Role.BILLING_ADMIN)


class Invitation(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        ACCEPTED = "accepted", "Accepted"
        REVOKED = "revoked", "Revoked"
        EXPIRED = "expired", "Expired"

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(
        max_length=20, choices=Membership.Role.choices, default=Membership.Role.MEMBER
    )
    with_seat = models.BooleanField(default=True)
    # The link's token is an HMAC of (id, nonce, expiry) under SECRET_KEY: the
    # database never holds a usable token, and a new nonce voids older links.
    nonce = models.CharField(max_length=32)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=dj_timezone.now)
    expires_at = models.DateTimeField()
    # When the mail carrying the current token went out; a resend clears it.
    sent_at = models.DateTimeField(null=True, blank=True)
    expiry_notice_sent_at = models.DateTimeField(null=True, blank=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                "account",
                Lower("email"),
                condition=Q(status="pending"),
                name="invitation_one_pending_per_email",
            ),
        ]
        indexes = [
            models.Index(fields=["account", "status", "expires_at"]),
            # The expiry sweep: pending invitations by expiry, whatever the account.
            models.Index(
                fields=["expires_at"],
                name="invitation_pending_expiry",
                condition=Q(status="pending"),
            ),
        ]

    def __str__(self):
        return f"Invitation of {self.email} to {self.account}"

    def is_usable(self, now) -> bool:
        return self.status == self.Status.PENDING and self.expires_at > now

    def effective_status(self, now) -> str:
        if self.status == self.Status.PENDING and self.expires_at <= now:
            return self.Status.EXPIRED
        return self.status


class AuditEvent(models.Model):
    """Who did what to which object, when and from where. Written with the change."""

    created_at = models.DateTimeField(default=dj_timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_email = models.CharField(max_length=254, blank=True)
    account = models.ForeignKey(
        Account, null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_events"
    )
    action = models.CharField(max_length=100)
    object_type = models.CharField(max_length=100)
    object_id = models.CharField(max_length=64)
    object_repr = models.CharField(max_length=300)
    changes = models.JSONField(default=dict, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["account", "-created_at"]),
            models.Index(fields=["object_type", "object_id"]),
        ]

    def __str__(self):
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor_email or 'system'} {self.action}"
