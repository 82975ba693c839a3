"""Audit rows for what allauth changes: sign-ups, passwords, emails, authenticators."""

from django.dispatch import receiver


def connect():
    from allauth.account import signals as account_signals
    from allauth.mfa import signals as mfa_signals

    from .services import audit_record

    def _audit(action):
        def handler(sender, request=None, user=None, **kwargs):
            user = user or getattr(request, "user", None)
            if user is None or not getattr(user, "pk", None):
                return
            changes = {}
            for key in ("email_address", "from_email_address", "to_email_address"):
                if kwargs.get(key) is not None:
                    changes[key] = str(kwargs[key].email)
            authenticator = kwargs.get("authenticator")
            if authenticator is not None:
                changes["type"] = authenticator.type
            audit_record(actor=user, action=action, target=user, changes=changes)

        return handler

    pairs = [
        (account_signals.user_signed_up, "user.signed_up"),
        (account_signals.password_changed, "user.password_changed"),
        (account_signals.password_set, "user.password_set"),
        (account_signals.password_reset, "user.password_reset"),
        (account_signals.email_confirmed, "user.email_confirmed"),
        (account_signals.email_added, "user.email_added"),
        (account_signals.email_removed, "user.email_removed"),
        (account_signals.email_changed, "user.primary_email_changed"),
        (mfa_signals.authenticator_added, "user.mfa_added"),
        (mfa_signals.authenticator_removed, "user.mfa_removed"),
        (mfa_signals.authenticator_reset, "user.mfa_reset"),
    ]
    for signal, action in pairs:
        receiver(signal, weak=False, dispatch_uid=f"audit-{action}")(_audit(action))
