"""Mail the marketplace sends to an account's billing contacts."""

from datetime import timedelta

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from accounts import formatting
from accounts.emails import send_templated
from accounts.selectors import billing_mail_recipients
from billing.money import Money


def _recipients(account, kind: str) -> list[str]:
    """Owners and billing admins who did not turn this reminder off in Profile."""
    return billing_mail_recipients(account=account, kind=kind)


def _url(installation) -> str:
    return settings.PORTAL_BASE_URL.rstrip("/") + reverse(
        "marketplace_app", args=[installation.app.slug]
    )


def send_trial_reminder(*, installation, last: bool) -> None:
    last_day = installation.trial_end - timedelta(days=1)
    account = installation.account
    with timezone.override(account.tzinfo), formatting.override(account.locale):
        for to in _recipients(account, "trial_ending"):
            send_templated(
                to=to,
                subject=(
                    f"Your {installation.app.name} trial ends today"
                    if last
                    else f"Your {installation.app.name} trial ends on {formatting.day(last_day)}"
                ),
                template="marketplace_trial",
                context={
                    "installation": installation,
                    "last_day": last_day,
                    "last": last,
                    "url": _url(installation),
                },
                html=True,
            )


def send_cap_alert(*, installation, level: int) -> None:
    currency = installation.plan.currency
    for to in _recipients(installation.account, "usage_cap"):
        send_templated(
            to=to,
            subject=f"{installation.app.name} has used {level}% of its monthly cap",
            template="marketplace_cap",
            context={
                "installation": installation,
                "level": level,
                "used": Money(installation.usage_amount, currency),
                "cap": Money(installation.usage_cap or 0, currency),
                "url": _url(installation),
            },
            html=True,
        )
