"""Staff console: completing a triaged mail to billing into a refund request (the page
is served by inbox's mail admin, through the refunds mailbox's handler)."""

from django import forms
from django.contrib import messages
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse

from accounts.errors import PortalError
from inbox.models import InboundMail

from .policy import REASON_LABELS, REASONS


class CompleteForm(forms.Form):
    order_number = forms.CharField(max_length=30, help_text="ORD-2026-000123")
    requester_email = forms.EmailField(
        help_text="An owner or billing admin of the order's account: the request is theirs."
    )
    reason = forms.ChoiceField(choices=[(r, REASON_LABELS[r]) for r in REASONS])


def complete_view(model_admin, request, mail):
    """The staff console's page that completes a triaged mail into a refund request."""
    from .mail.intake import mail_complete

    parsed = mail.parsed or {}
    form = CompleteForm(
        request.POST or None,
        initial={
            "order_number": parsed.get("order_number") or "",
            "requester_email": mail.sender,
            "reason": parsed.get("reason_code") or "no_longer_needed",
        },
    )
    if mail.status != InboundMail.Status.TRIAGE:
        messages.warning(request, "Only a mail in triage can be completed.")
        return HttpResponseRedirect(reverse("admin:inbox_inboundmail_change", args=[mail.pk]))
    if request.method == "POST" and form.is_valid():
        try:
            refund = mail_complete(actor=request.user, mail=mail, **form.cleaned_data)
        except PortalError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        else:
            messages.success(request, f"{refund.number} created from the mail.")
            return HttpResponseRedirect(
                reverse("admin:refunds_refundrequest_change", args=[refund.pk])
            )
    return TemplateResponse(
        request,
        "admin/inbox/inboundmail/complete.html",
        {
            **model_admin.admin_site.each_context(request),
            "title": f"Complete a refund request from {mail.sender or 'an unknown sender'}",
            "opts": model_admin.model._meta,
            "mail": mail,
            "form": form,
        },
    )
