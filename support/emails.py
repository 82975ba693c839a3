"""Mail about incidents: to the contact as it moves, to the support leads on a breach.
The subject carries [INC-…] so that replies thread onto the incident."""

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from accounts.emails import send_templated
from inbox.proof import reply_address

TEXT = {
    "opened": "We received your support incident.",
    "declined": "Your request is outside what support covers under our terms of service.",
    "awaiting_payment": "Your incident is beyond this year's quota: it opens once its order is paid.",
    "answered": "Our support team answered your incident.",
    "resolved": "Your incident is resolved. Reply within 14 days if the problem comes back.",
    "closed": "Your incident is closed.",
}


def send_incident_update(*, incident, event: str) -> bool:
    kind, _, deadline = event.partition(":")
    url = settings.PORTAL_BASE_URL.rstrip("/") + reverse("incident_detail", args=[incident.number])
    context = {"incident": incident, "url": url}
    if kind == "breach":
        for to in settings.SUPPORT_LEADS:
            send_templated(
                to=to,
                subject=f"[{incident.number}] {deadline} deadline missed ({incident.severity})",
                template="incident_staff",
                context={
                    **context,
                    "text": f"The {deadline} deadline of {incident.number} passed.",
                },
            )
        return True
    from .services import support_contact

    contact = support_contact(incident.account)
    recipient = contact.user if contact else incident.opened_by
    if recipient is None:
        return False
    if kind == "opened" and incident.state in ("declined", "awaiting_payment"):
        kind = incident.state
    messages = list(incident.messages.filter(internal=False).order_by("-created_at")[:1])
    with timezone.override(incident.account.tzinfo):
        send_templated(
            to=recipient.email,
            subject=f"[{incident.number}] {incident.subject}",
            template="incident_update",
            # A reply to this address is proven for this incident (inbox.proof).
            reply_to=reply_address(settings.SUPPORT_EMAIL, incident.number),
            context={
                **context,
                "text": TEXT.get(kind, ""),
                "last": messages[0] if messages else None,
            },
        )
    return True
