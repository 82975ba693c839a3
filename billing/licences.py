"""On-premise: perpetual licences, their keys, and the support contract they need.

1CRM terms, On-Premise Perpetual Licenses:
- support is mandatory in the first year (optional thereafter);
- users licensed later must include their first year of support, and a system
  must be under an active support agreement to add users or activate users;
- a lapsed contract renewed later runs from its expiry (at most 12 months in
  arrears) to 12 months after the end of the month of renewal;
- renewing support for fewer users than licensed means renouncing the excess.

Readings where the terms are silent (said in the README):
- users added while the contract runs are put on it until its current end,
  priced pro rata like a seat increase: their first year of support is the
  contract's current year; from the renewal on they renew with everyone else;
- renewing before the expiry continues the contract for 12 months from it;
- support is not renewed automatically: it expires at its end date.
"""

import hashlib
import hmac
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import F, Sum
from django.utils import timezone

from accounts.errors import PortalError
from accounts.models import Account
from accounts.services import audit_record

from .models import Licence, OrderLine, Price, Product, Subscription
from .money import Money
from .support_contracts import SupportRenewal, support_renewal_period

# Renewing ahead of the expiry is offered in its last days only, so that one
# contract is not paid years ahead by a double click.
EARLY_RENEWAL_DAYS = 90


# --- keys ------------------------------------------------------------------------------


def _key_digest(pk: int) -> str:
    mac = hmac.new(
        settings.SECRET_KEY.encode(), f"licence:{pk}".encode(), hashlib.sha256
    ).hexdigest()
    return mac[:24].upper()


def licence_key(licence: Licence) -> str:
    """The key a self-hosted system activates with; derived, never stored."""
    digest = _key_digest(licence.pk)
    groups = "-".join(digest[i : i + 6] for i in range(0, 24, 6))
    return f"LIC-{licence.pk:06d}-{groups}"


def licence_from_key(key: str) -> Licence | None:
    parts = (key or "").strip().upper().split("-")
    if len(parts) != 6 or parts[0] != "LIC" or not parts[1].isdigit() or len(parts[1]) > 12:
        return None
    pk = int(parts[1])
    if not hmac.compare_digest("".join(parts[2:]), _key_digest(pk)):
        return None
    return Licence.objects.select_related("account", "product", "line").filter(pk=pk).first()


# --- who is covered -------------------------------------------------------------------------


def licensed_users(account: Account) -> int | None:
    """Users the account's perpetual licences cover; None for an account without any."""
    # The free Startup Edition has no support (1CRM terms): it is not counted here.
    rows = Licence.objects.filter(
        account=account, product__kind=Product.Kind.PERPETUAL_LICENSE
    ).exclude(product__edition=Product.Edition.STARTUP)
    if not rows.exists():
        return None
    covered = rows.filter(status=Licence.Status.ACTIVE).aggregate(
        total=Sum(F("users") - F("renounced"))
    )["total"]
    return covered or 0


def support_contract(account: Account) -> Subscription | None:
    """The account's support contract for its licences: the newest one."""
    from django.db.models import Case, Exists, IntegerField, OuterRef, Value, When

    # A contract that never started (its first order cancelled) does not count, and a
    # running one wins over one that ended.
    started = OrderLine.objects.filter(
        subscription=OuterRef("pk"), effect=OrderLine.Effect.START, order__paid_at__isnull=False
    )
    return (
        Subscription.objects.support_contracts()
        .filter(account=account)
        .exclude(status=Subscription.Status.PENDING)
        .filter(Exists(started))
        .annotate(
            rank=Case(
                When(status=Subscription.Status.ACTIVE, then=Value(0)),
                When(status=Subscription.Status.LAPSED, then=Value(1)),
                default=Value(2),
                output_field=IntegerField(),
            )
        )
        .select_related("price__product")
        .order_by("rank", "-created_at", "-id")
        .first()
    )


def support_is_active(contract: Subscription | None, today: date) -> bool:
    return (
        contract is not None
        and contract.status == Subscription.Status.ACTIVE
        and contract.current_period_start <= today < contract.current_period_end
    )


def support_seat_refusal(account: Account) -> str | None:
    """Registered with accounts: no seat is given on-premise without active support."""
    if licensed_users(account) is None:
        return None
    from .services import account_today

    contract = support_contract(account)
    if support_is_active(contract, account_today(account)):
        return None
    since = f" since {contract.current_period_end:%d %B %Y}" if contract else ""
    return (
        f"{account.name}'s support contract is not active{since}: renew it under Account "
        "Settings > Billing before adding or activating users (1CRM terms, on-premise)."
    )


def support_price(currency: str) -> Price | None:
    """The per-user yearly support price the catalogue sells in a currency."""
    return (
        Price.objects.filter(
            is_active=True,
            product__is_active=True,
            product__kind=Product.Kind.SUPPORT_CONTRACT,
            currency=currency,
            interval=Price.Interval.YEAR,
            scheme=Price.Scheme.PER_SEAT,
        )
        .select_related("product")
        .order_by("amount", "pk")
        .first()
    )


# --- renewal ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SupportRenewalQuote:
    contract: Subscription
    users: int
    licensed: int
    period: SupportRenewal
    amount: Money

    @property
    def renounced(self) -> int:
        return max(self.licensed - self.users, 0)

    def explain(self) -> str:
        months = self.period.months_billed
        text = (
            f"Support for {self.users} user(s) from {self.period.start:%d %B %Y} to "
            f"{self.period.end:%d %B %Y} ({months} months): {self.amount}."
        )
        if self.period.arrears_days:
            text += (
                f" A renewal after the expiry runs from the expiry date, at most 12 months "
                f"back, to 12 months after the end of this month (1CRM terms): it covers "
                f"{self.period.arrears_days} days before today."
            )
        if self.renounced:
            text += (
                f" Renewing for {self.users} of your {self.licensed} licensed users means "
                f"renouncing {self.renounced} user licence(s) for good (1CRM terms)."
            )
        return text


def support_renewal_quote(*, account: Account, users: int, today: date) -> SupportRenewalQuote:
    contract = support_contract(account)
    licensed = licensed_users(account)
    if contract is None or licensed is None:
        raise PortalError(f"{account.name} has no on-premise support contract.", field="users")
    if not isinstance(users, int) or isinstance(users, bool) or users < 1:
        raise PortalError("Give a whole number of users, at least 1.", field="users")
    if users > licensed:
        raise PortalError(
            f"Support covers licensed users: {licensed} are licensed. Buy more user "
            "licences to cover more.",
            field="users",
        )
    if users < licensed:
        from accounts.selectors import seat_usage

        usage = seat_usage(account=account, now=timezone.now())
        if users < usage.used:
            raise PortalError(
                f"{usage.describe()}: renew for at least {usage.used} users, or take seats "
                "from members first.",
                field="users",
            )
    if contract.status == Subscription.Status.ACTIVE:
        days_left = (contract.current_period_end - today).days
        if days_left > EARLY_RENEWAL_DAYS:
            raise PortalError(
                f"Support runs until {contract.last_day:%d %B %Y}; it can be renewed in its "
                f"last {EARLY_RENEWAL_DAYS} days.",
                field="users",
            )
    period = support_renewal_period(expired_on=contract.current_period_end, renewed_on=today)
    price = contract.price
    # Billed by the month: a year's price per user, times the months covered, over 12.
    amount = (
        Money(price.amount, price.currency) * users * period.months_billed / Decimal(12)
    ).rounded()
    return SupportRenewalQuote(
        contract=contract, users=users, licensed=licensed, period=period, amount=amount
    )


def renounce_excess(account: Account, *, keep: int, actor, reference: str) -> int:
    """Renounce licensed users above `keep`, newest licences first. Caller holds the lock."""
    excess = (licensed_users(account) or 0) - keep
    renounced = 0
    licences = (
        Licence.objects.select_for_update()
        .filter(
            account=account,
            product__kind=Product.Kind.PERPETUAL_LICENSE,
            status=Licence.Status.ACTIVE,
        )
        .exclude(product__edition=Product.Edition.STARTUP)
        .order_by("-issued_at", "-id")
    )
    for licence in licences:
        if excess <= 0:
            break
        take = min(licence.users_covered, excess)
        if take <= 0:
            continue
        licence.renounced += take
        licence.save(update_fields=["renounced"])
        audit_record(
            actor=actor,
            action="licence.users_renounced",
            target=licence,
            account=account,
            changes={"renounced": take, "covers": licence.users_covered, "by": reference},
        )
        excess -= take
        renounced += take
    return renounced


def licence_issue(line: OrderLine, *, actor, now) -> Licence:
    """The order is paid: the key exists at once and is mailed (delivery policy §1-2)."""
    from .tasks import send_licence_key_email

    licence, created = Licence.objects.get_or_create(
        line=line,
        defaults={
            "account": line.order.account,
            "product": line.product,
            "users": line.quantity,
            "issued_at": now,
        },
    )
    if created:
        audit_record(
            actor=actor,
            action="licence.issued",
            target=licence,
            account=licence.account,
            changes={"users": licence.users, "order": line.order.number},
        )
        send_licence_key_email.delay_on_commit(licence.pk)
    return licence


def licence_activate(*, key: str, instance: str = "", now=None) -> Licence:
    """A self-hosted system activates with its key: the line is then delivered and used."""
    from accounts.services import clean_text

    now = now or timezone.now()
    instance = clean_text(
        instance, field="instance", label="the instance name", max_length=200, required=False
    )
    licence = licence_from_key(key)
    if licence is None:
        raise PortalError("This licence key is not valid.", field="key")
    from .services import _lock

    with transaction.atomic():
        _lock(licence.account)
        licence = Licence.objects.select_for_update().select_related("line").get(pk=licence.pk)
        if licence.status != Licence.Status.ACTIVE:
            raise PortalError("This licence key has been revoked.", field="key")
        if licence.users_covered == 0:
            raise PortalError("Every user of this licence key was renounced.", field="key")
        if licence.activated_at is None:
            licence.activated_at = now
            licence.save(update_fields=["activated_at"])
            line = licence.line
            line.activated_at = now
            line.delivery = OrderLine.Delivery.DOWNLOADED
            line.delivered_at = line.delivered_at or now
            line.save(update_fields=["activated_at", "delivery", "delivered_at"])
            audit_record(
                actor=None,
                action="licence.activated",
                target=licence,
                account=licence.account,
                changes={"instance": instance},
            )
    return licence


def licence_revoke(*, licence: Licence, actor, reason: str, now=None) -> Licence:
    """Revoke a key (a refunded licence or plugin); its users stop counting."""
    from .services import _lock, _sync_seats_paid

    now = now or timezone.now()
    with transaction.atomic():
        _lock(licence.account)
        licence = Licence.objects.select_for_update().get(pk=licence.pk)
        if licence.status == Licence.Status.REVOKED:
            return licence
        licence.status = Licence.Status.REVOKED
        licence.revoked_at = now
        licence.save(update_fields=["status", "revoked_at"])
        audit_record(
            actor=actor,
            action="licence.revoked",
            target=licence,
            account=licence.account,
            changes={"reason": reason},
        )
        _sync_seats_paid(licence.account, actor=actor)
    return licence
