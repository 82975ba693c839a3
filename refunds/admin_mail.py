"""Staff console: mails to billing, with the triage queue and completing a mail into a
refund request."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone

from accounts.errors import PortalError

from .models import InboundMail
from .policy import REASON_LABELS, REASONS


class CompleteForm(forms.Form):
    order_number = forms.CharField(max_length=30, help_text="ORD-2026-000123")
    requester_email = forms.EmailField(
        help_text="An owner or billing admin of the order's account: the request is theirs."
    )
    reason = forms.ChoiceField(choices=[(r, REASON_LABELS[r]) for r in REASONS])


@admin.register(InboundMail)
class InboundMailAdmin(admin.ModelAdmin):
    list_display = ["received_at", "sender", "subject", "status", "request", "triage_reasons"]
    list_filter = ["status", "source"]
    search_fields = ["sender", "subject", "message_id"]
    list_select_related = ["request"]
    readonly_fields = [
        "message_id",
        "source",
        "raw",
        "size",
        "sender",
        "subject",
        "status",
        "reasons",
        "parsed",
        "request",
        "answered_at",
        "received_at",
        "resolved_by",
        "resolved_at",
    ]
    actions = ["dismiss"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="Why in triage")
    def triage_reasons(self, obj):
        return " ".join(obj.reasons) if obj.status == InboundMail.Status.TRIAGE else ""

    @admin.action(description="Dismiss the selected triage mails", permissions=["change"])
    def dismiss(self, request, queryset):
        count = queryset.filter(status=InboundMail.Status.TRIAGE).update(
            status=InboundMail.Status.DISMISSED,
            resolved_by=request.user,
            resolved_at=timezone.now(),
        )
        self.message_user(request, f"{count} mail(s) dismissed.")

    def get_urls(self):
        return [
            path(
                "<path:object_id>/complete/",
                self.admin_site.admin_view(self.complete_view),
                name="refunds_inboundmail_complete",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "complete_url": reverse("admin:refunds_inboundmail_complete", args=[object_id]),
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def complete_view(self, request, object_id):
        from .mail.intake import mail_complete

        if not self.has_change_permission(request):
            raise PermissionDenied
        mail = get_object_or_404(InboundMail, pk=object_id)
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
            return HttpResponseRedirect(reverse("admin:refunds_inboundmail_change", args=[mail.pk]))
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
            "admin/refunds/inboundmail/complete.html",
            {
                **self.admin_site.each_context(request),
                "title": f"Complete a refund request from {mail.sender or 'an unknown sender'}",
                "opts": self.model._meta,
                "mail": mail,
                "form": form,
            },
        )
