"""On-premise licences (1CRM terms, On-Premise Perpetual Licenses): keys issued when paid,
activated by the self-hosted system, revoked when refunded, users renounced when support
is renewed for fewer of them. Keys are derived from the id, never stored."""

from django.db import transaction
from django.utils import timezone

from accounts.errors import PortalError
from accounts.models import Account
from accounts.services import audit_record, clean_text
from core import outbox

from .. import tasks
from ..locks import lock_account, lock_licence
from ..models import Licence, OrderLine, Product
from ..selectors import entitlement_refusal, licence_from_key, licensed_users
from .seats import seats_paid_sync
from .states import LICENCE


def licence_issue(line: OrderLine, *, actor, now) -> Licence:
    """The order is paid: the key exists at once and is mailed (delivery policy §1-2)."""
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
        outbox.enqueue(tasks.send_licence_key_email, licence.pk)
    return licence


def licence_activate(*, key: str, instance: str = "", now=None) -> Licence:
    """A self-hosted system activates with its key: the line is then delivered and used."""
    now = now or timezone.now()
    instance = clean_text(
        instance, field="instance", label="the instance name", max_length=200, required=False
    )
    licence = licence_from_key(key)
    if licence is None:
        raise PortalError("This licence key is not valid.", field="key")
    with transaction.atomic():
        lock_account(licence.account)
        licence = (
            Licence.objects.select_for_update(no_key=True).select_related("line").get(pk=licence.pk)
        )
        if licence.status != Licence.Status.ACTIVE:
            raise PortalError("This licence key has been revoked.", field="key")
        if licence.users_covered == 0:
            raise PortalError("Every user of this licence key was renounced.", field="key")
        refusal = entitlement_refusal(licence.account, licence.product)
        if refusal:
            raise PortalError(refusal, field="key", code="not_entitled")
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
    now = now or timezone.now()
    with transaction.atomic():
        lock_account(licence.account)
        licence = lock_licence(licence)
        if licence.status == Licence.Status.REVOKED:
            return licence
        licence.revoked_at = now
        LICENCE.move(
            licence,
            Licence.Status.REVOKED,
            actor=actor,
            action="licence.revoked",
            changes={"reason": reason},
            also=["revoked_at"],
        )
        seats_paid_sync(licence.account, actor=actor)
    return licence


def licence_renounce_excess(account: Account, *, keep: int, actor, reference: str) -> int:
    """Renounce licensed users above `keep`, newest licences first. Caller holds the lock."""
    excess = (licensed_users(account) or 0) - keep
    renounced = 0
    licences = (
        Licence.objects.select_for_update(no_key=True)
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
