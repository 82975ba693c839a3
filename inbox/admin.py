"""Staff console: the mail of every mailbox, with the queues (triage, held, awaiting
confirmation), accepting or discarding a held reply, and the mailbox's own "complete"
page (a triaged refund mail completed into a request)."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.urls import path, reverse

from accounts.admin import QueueAdmin
from accounts.errors import PortalError

from . import services
from .handlers import HANDLERS
from .models import InboundMail


class SourceFilter(admin.SimpleListFilter):
    """Mails by how they were fetched (?source=imap): the sources the intake writes,
    without reading the distinct values of every mail ever received."""

    title = "source"
    parameter_name = "source"

    def lookups(self, request, model_admin):
        return [
            ("imap", "IMAP"),
            ("maildir", "Maildir"),
            ("mbox", "mbox"),
            ("webhook", "Provider webhook"),
        ]

    def queryset(self, request, queryset):
        return queryset if self.value() is None else queryset.filter(source=self.value())


@admin.register(InboundMail)
class InboundMailAdmin(QueueAdmin):
    list_display = ["received_at", "mailbox", "sender", "subject", "status", "proof", "thread"]
    list_filter = ["mailbox", "status", SourceFilter, "proof"]
    search_fields = ["sender", "subject", "message_id", "thread"]
    # The stored parse (up to 20,000 characters of body) and the answer are not listed.
    list_defer = ("parsed", "answer", "reasons")
    readonly_fields = [f.name for f in InboundMail._meta.fields]
    actions = ["accept", "dismiss"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(
        description="Accept the selected held replies (post them as their sender)",
        permissions=["change"],
    )
    def accept(self, request, queryset):
        done, refused = 0, []
        for mail in queryset.filter(status=InboundMail.Status.HELD):
            try:
                services.mail_accept(actor=request.user, mail=mail)
            except PortalError as exc:
                refused.append(f"{mail.subject or mail.pk}: {exc.message}")
            else:
                done += 1
        self.message_user(request, f"{done} reply(ies) accepted.")
        for line in refused:
            self.message_user(request, line, level=messages.WARNING)

    @admin.action(
        description="Dismiss the selected mails (triage, held, awaiting confirmation)",
        permissions=["change"],
    )
    def dismiss(self, request, queryset):
        count = sum(services.mail_dismiss(actor=request.user, mail=mail) for mail in queryset)
        self.message_user(request, f"{count} mail(s) dismissed.")

    def get_urls(self):
        return [
            path(
                "<path:object_id>/complete/",
                self.admin_site.admin_view(self.complete_view),
                name="inbox_inboundmail_complete",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        mail = InboundMail.objects.filter(pk=object_id).first()
        handler = HANDLERS.get(mail.mailbox) if mail else None
        extra = {**(extra_context or {})}
        if handler and handler.complete_view and mail.status == InboundMail.Status.TRIAGE:
            extra["complete_url"] = reverse("admin:inbox_inboundmail_complete", args=[mail.pk])
        return super().change_view(request, object_id, form_url, extra)

    def complete_view(self, request, object_id):
        if not self.has_change_permission(request):
            raise PermissionDenied
        mail = get_object_or_404(InboundMail, pk=object_id)
        handler = HANDLERS.get(mail.mailbox)
        if handler is None or handler.complete_view is None:
            raise Http404("This mailbox's mails are not completed by hand.")
        return handler.complete_view(self, request, mail)
