"""Mail the billing app sends, through the accounts app's one sender."""

from django.conf import settings
from django.urls import reverse

from accounts.emails import send_templated
from accounts.models import Membership

from .selectors import licence_key


def _billing_recipients(account, preferred=None) -> list[str]:
    if preferred is not None and preferred.is_active:
        return [preferred.email]
    return list(
        Membership.objects.filter(
            account=account,
            is_active=True,
            role__in=[Membership.Role.OWNER, Membership.Role.BILLING_ADMIN],
        )
        .order_by("pk")
        .values_list("user__email", flat=True)
    )


def send_licence_key(*, licence) -> None:
    url = settings.PORTAL_BASE_URL.rstrip("/") + reverse("settings_billing")
    for to in _billing_recipients(licence.account, licence.line.order.created_by):
        send_templated(
            to=to,
            subject=f"Your {licence.product.name} licence key ({licence.line.order.number})",
            template="licence_key",
            context={"licence": licence, "key": licence_key(licence), "url": url},
        )
