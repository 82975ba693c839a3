"""Mail the accounts app sends. Rendered from templates, sent by Celery tasks."""

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone


def send_templated(
    *,
    to: str,
    subject: str,
    template: str,
    context: dict,
    html: bool = False,
    attachments=(),
    reply_to: str | None = None,
) -> None:
    """One mail from emails/<template>.txt, with emails/<template>.html as its HTML part
    when `html`, and `attachments` as (filename, bytes, mimetype)."""
    context = {**context, "PORTAL_NAME": settings.PORTAL_NAME}
    text = render_to_string(f"emails/{template}.txt", context)
    message = EmailMultiAlternatives(
        subject=" ".join(subject.split()),  # one line, whatever a name contained
        body=text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[to],
        reply_to=[reply_to] if reply_to else None,
    )
    if html:
        message.attach_alternative(
            render_to_string(f"emails/{template}.html", context), "text/html"
        )
    for filename, content, mimetype in attachments:
        message.attach(filename, content, mimetype)
    message.send()


def invitation_url(token: str) -> str:
    return settings.PORTAL_BASE_URL.rstrip("/") + reverse("invitation_accept", args=[token])


def send_invitation(*, invitation, token: str) -> None:
    inviter = invitation.invited_by.get_full_name() if invitation.invited_by else "The owner"
    # Times in the mail are the account's local times, as on its pages.
    with timezone.override(invitation.account.tzinfo):
        send_templated(
            to=invitation.email,
            subject=f"{inviter} invited you to {invitation.account.name} on {settings.PORTAL_NAME}",
            template="invitation",
            context={"invitation": invitation, "inviter": inviter, "url": invitation_url(token)},
        )


def send_invitation_expired(*, invitation) -> None:
    send_templated(
        to=invitation.invited_by.email,
        subject=f"Your invitation to {invitation.email} expired",
        template="invitation_expired",
        context={
            "invitation": invitation,
            "url": settings.PORTAL_BASE_URL.rstrip("/") + reverse("settings_users"),
        },
    )
