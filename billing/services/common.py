"""Checks every billing use case shares: who may act, what was previewed, whole numbers."""

from accounts import selectors as account_selectors
from accounts.errors import NotAllowed, PortalError
from accounts.models import Account

from ..money import Money


def require_billing_role(*, actor, account: Account) -> None:
    """Owners and billing admins act on billing; staff may act from the console."""
    if actor is not None and actor.is_staff and actor.has_perm("billing.change_subscription"):
        return
    if not account_selectors.acts_on_billing(user=actor, account=account):
        raise NotAllowed("Only owners and billing admins can change billing.")


def require_previewed(amount: Money, expected: Money | None, *, field: str) -> None:
    """A confirmation goes through only at the amount the customer was shown."""
    if expected is not None and expected != amount:
        raise PortalError(
            f"The amount changed since your preview: it is now {amount}. "
            "Preview again to confirm it.",
            field=field,
        )


def whole_number(value, *, field_name: str, label: str) -> int:
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdecimal():
        value = int(value.strip())
    if not isinstance(value, int) or isinstance(value, bool):
        raise PortalError(f"Give {label} as a whole number.", field=field_name)
    return value
