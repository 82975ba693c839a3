"""Mail about refund requests: to the customer at every state, to the holder before a
deadline, to the billing leads when one is breached."""

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from accounts import formatting
from accounts.emails import send_templated
from inbox.proof import reply_address

from .models import RefundRequest

CUSTOMER_TEXT = {
    "received": "We received your refund request. We acknowledge it within 2 business days "
    "and decide within 5.",
    "acknowledged": "We acknowledged your refund request; our billing team reviews it now.",
    "in_review": "Your refund request is in review.",
    "needs_info": "We need more information to decide: please answer on the request's page. "
    "The review waits for your answer.",
    "decided": "We decided your refund request.",
    "paying": "We decided your refund request: your refund is being paid out.",
    "paid": "Your refund was paid back to your original payment method.",
    "credited": "Your refund was put on your account as credit.",
    "closed": "Your refund request is closed.",
    "withdrawn": "You withdrew your refund request.",
}
# A denial closes the request in the same step: its one mail says both.
DENIED_TEXT = "We decided your refund request: it is denied (the reasons are below) and closed."


def _url(request) -> str:
    return settings.PORTAL_BASE_URL.rstrip("/") + reverse(
        "refund_request_detail", args=[request.number]
    )


def send_refund_update(*, request, event: str) -> bool:
    # Dates in the mail in the account's zone, as on its pages.
    with timezone.override(request.account.tzinfo), formatting.override(request.account.locale):
        return _send_update(request=request, event=event)


def _send_update(*, request, event: str) -> bool:
    kind, _, deadline = event.partition(":")
    lines = list(request.lines.select_related("order_line"))
    context = {"request": request, "lines": lines, "url": _url(request), "deadline": deadline}
    if kind == "reminder":
        if request.holder is None:
            return False
        send_templated(
            to=request.holder.email,
            subject=f"{request.number}: the {deadline} deadline is tomorrow",
            template="refund_staff",
            context={**context, "text": f"The {deadline} deadline of {request.number} is near."},
        )
        return True
    if kind == "reversed":
        return _to_leads(
            subject=f"{request.number}: a refund paid out came back failed",
            text=f"The gateway says a refund of {request.number} failed after it had "
            "succeeded: the customer does not have the money. Settle it by hand.",
            context=context,
        )
    if kind == "breach":
        return _to_leads(
            subject=f"{request.number}: the {deadline} deadline was missed",
            text=f"The {deadline} deadline of {request.number} passed.",
            context=context,
        )
    recipient = request.requested_by.email if request.requested_by else None
    if recipient is None:
        return False
    # The state the mail is about, not the request's state when the job runs (a worker
    # may send several steps' mails after the request moved on).
    state = kind if kind in RefundRequest.State.values else request.state
    label = RefundRequest.State(state).label
    send_templated(
        to=recipient,
        subject=f"{request.number}: {label}",
        template="refund_update",
        # A reply to this address is proven for this request (inbox.proof).
        reply_to=reply_address(settings.VENDOR_BILLING_EMAIL, request.number),
        context={
            **context,
            "text": DENIED_TEXT
            if state == "closed" and request.outcome == RefundRequest.Outcome.DENIED
            else CUSTOMER_TEXT.get(kind, ""),
            "state": state,
            "state_label": label,
        },
    )
    return True


def _to_leads(*, subject: str, text: str, context: dict) -> bool:
    for to in settings.REFUND_BILLING_LEADS:
        send_templated(
            to=to, subject=subject, template="refund_staff", context={**context, "text": text}
        )
    return True
