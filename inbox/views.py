"""The link that confirms an unproven mail (services.mail_await_confirmation).

Only a signed-in user may follow it, and only one the mailbox's handler lets act for the
mail's account (an owner or billing admin for a refund request, the support contact or
an owner for an incident); anyone else, and an expired or altered link, gets a 404.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render

from accounts.errors import PortalError

from . import services
from .handlers import handler_for
from .models import InboundMail


@login_required
def mail_confirm(request, token: str):
    mail = services.mail_for_token(token)
    if mail is None or mail.confirm_user_id != request.user.pk:
        raise Http404("No such mail to confirm.")
    handler = handler_for(mail.mailbox)
    closed = mail.status != InboundMail.Status.CONFIRM
    if request.method == "POST" and not closed:
        try:
            url = services.mail_confirm(mail=mail, user=request.user)
        except PortalError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, "Thank you: your mail is confirmed.")
            return redirect(url)
    body = (mail.parsed or {}).get("body", "")
    return render(
        request,
        "inbox/confirm.html",
        {
            "mail": mail,
            "what": handler.describe(mail) if handler.describe else "",
            "body": body[:4000],
            "closed": closed,
        },
    )
