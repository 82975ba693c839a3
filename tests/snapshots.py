"""A snapshot of every row a customer request can change, to prove one changed nothing."""

from allauth.account.models import EmailAddress
from rest_framework.authtoken.models import Token

from accounts.models import Account, AuditEvent, Invitation, Membership, User


def db_state() -> dict:
    """Every row the customer pages and the API can change, as plain values."""
    return {
        "accounts": list(Account.objects.order_by("pk").values()),
        "memberships": list(Membership.objects.order_by("pk").values()),
        "invitations": list(Invitation.objects.order_by("pk").values()),
        # `last_login` moves when a test client signs in; it is not the request's doing.
        "users": [
            {k: v for k, v in row.items() if k != "last_login"}
            for row in User.objects.order_by("pk").values()
        ],
        "emails": list(EmailAddress.objects.order_by("pk").values()),
        "tokens": list(Token.objects.order_by("pk").values()),
        "audit": AuditEvent.objects.count(),
    }
