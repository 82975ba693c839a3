"""Staff console for support: the incident queue by next deadline with one review page
per incident (answers, internal notes, reclassification, billing, assignment, resolve or
close, history), and the planned maintenance notices of the service-level page."""

from django import forms
from django.contrib import admin, messages
from django.db.models import F
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone

from accounts.admin import (
    AuditedAdmin,
    DeadlineFilter,
    ReviewPageAdmin,
    StaffFilter,
    StaffStateFilter,
)
from accounts.errors import PortalError
from accounts.uploads import download
from core.calendar import vendor_tz

from . import services
from .admin_forms import AnswerForm, NoteForm, UpdateForm
from .models import Incident, IncidentAttachment, MaintenanceNotice

State = Incident.State
RESOLVABLE = (State.OPEN, State.IN_PROGRESS, State.WAITING)
CLOSABLE = (State.RESOLVED, State.DECLINED, State.OPEN, State.IN_PROGRESS, State.WAITING)


def deadline_name(incident: Incident) -> str:
    """Which deadline `next_deadline` is (services._next_deadline's choice)."""
    if incident.next_deadline is None:
        return ""
    return "first response" if incident.first_response_at is None else "update"


def breached_names(incident: Incident) -> list[str]:
    """The deadlines missed, by name ("first response due …" → "first response")."""
    names = []
    for key in incident.breached or []:
        name = str(key).split(" due ", 1)[0]
        if name not in names:
            names.append(name)
    return names


@admin.register(Incident)
class IncidentAdmin(ReviewPageAdmin):
    """The support queue: sorted by the next deadline, one review page per incident.

    Incidents arrive from customers and change only through the services: rows are never
    added, edited as a form, or deleted here.
    """

    list_display = [
        "number",
        "account",
        "subject",
        "priority",
        "staff_state",
        "billing",
        "assignee",
        "next_due",
        "badges",
    ]
    list_filter = [
        ("state", StaffStateFilter),
        DeadlineFilter,
        "severity",
        "scope",
        "billing",
        ("assignee", StaffFilter),
    ]
    search_fields = ["number", "subject", "account__name"]
    list_select_related = ["account", "assignee"]
    list_defer = ("description",)
    # The index incident_console_queue holds the rows in this order.
    ordering = [F("next_deadline").asc(nulls_last=True), "id"]
    actions = ["assign_to_me"]
    review_template = "admin/support/incident/review.html"
    badge_prefix = "incident"

    def get_urls(self):
        return [
            path(
                "<path:object_id>/attachments/<int:attachment_id>/",
                self.admin_site.admin_view(self.attachment_view),
                name="support_incident_attachment",
            ),
            *super().get_urls(),
        ]

    def attachment_view(self, request, object_id, attachment_id):
        """A file the customer sent by mail, for staff who may see the incident."""
        incident = self._get_viewable(request, object_id)
        attachment = get_object_or_404(IncidentAttachment, pk=attachment_id, incident=incident)
        return download(attachment.file, name=attachment.name, content_type=attachment.content_type)

    # Every two-value change of an incident is a move: state, severity, scope, billing,
    # assignee.
    transition_keys = ("state", "severity", "scope", "billing", "assignee")
    vendor_tz = staticmethod(vendor_tz)

    def breached_names(self, incident):
        return breached_names(incident)

    # --- the queue -------------------------------------------------------------------------

    @admin.display(description="Severity", ordering="severity")
    def priority(self, incident):
        return incident.severity

    @admin.display(description="Next deadline", ordering="next_deadline")
    def next_due(self, incident):
        if incident.next_deadline is None:
            return "—"
        local = incident.next_deadline.astimezone(vendor_tz())
        return f"{deadline_name(incident)} by {local:%a} {local.day} {local:%b %Y, %H:%M}"

    @admin.display(description="Badges", ordering="next_deadline")
    def badges(self, incident):
        return self.render_badges(incident, timezone.now())

    @admin.action(description="Assign to me", permissions=["change"])
    def assign_to_me(self, request, queryset):
        for incident in queryset.order_by("pk"):
            if incident.assignee_id == request.user.pk:
                self.message_user(
                    request, f"{incident.number}: already assigned to you.", messages.INFO
                )
                continue
            try:
                services.incident_update(
                    actor=request.user, incident=incident, assignee=request.user
                )
            except PortalError as exc:
                self.message_user(request, f"{incident.number}: {exc.message}", messages.ERROR)
            else:
                self.message_user(request, f"{incident.number}: assigned to you.", messages.SUCCESS)

    # --- one incident: the review page ----------------------------------------------------

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("account", "assignee", "opened_by")

    def _perform(self, request, incident, action, posted):
        """Run the action posted and say what was done; a form bound from the post goes
        in posted["form"], so that a refusal shows it again with its input."""
        user = request.user
        if action == "answer":
            form = posted["form"] = AnswerForm(request.POST)
            if not form.is_valid():
                raise PortalError("Correct the answer below.")
            data = form.cleaned_data
            services.incident_respond(
                actor=user, incident=incident, body=data["body"], wait=data["wait"]
            )
            incident.refresh_from_db()
            done = (
                f"{incident.number}: the customer was answered; it is "
                f"{incident.staff_state_label.lower()}."
            )
        elif action == "note":
            form = posted["form"] = NoteForm(request.POST)
            if not form.is_valid():
                raise PortalError("Correct the note below.")
            services.incident_respond(
                actor=user, incident=incident, body=form.cleaned_data["body"], internal=True
            )
            done = f"{incident.number}: internal note added (the customer does not see it)."
        elif action == "update":
            form = posted["form"] = UpdateForm(request.POST, incident=incident)
            if not form.is_valid():
                raise PortalError("Correct the changes below.")
            # Only what staff changed: a reclassified incident's new billing (counted
            # in the quota) is not overwritten by the billing the page showed.
            changed = {
                name: form.cleaned_data[name]
                for name in ("severity", "scope", "billing", "assignee")
                if name in form.changed_data
            }
            if not changed:
                self.message_user(request, "Nothing changed.", messages.INFO)
                return None
            incident = services.incident_update(actor=user, incident=incident, **changed)
            done = (
                f"{incident.number} updated: {incident.severity}, "
                f"{incident.get_scope_display().lower()}, "
                f"{incident.get_billing_display().lower()}; it is "
                f"{incident.staff_state_label.lower()}"
                f"{f', assigned to {incident.assignee.email}' if incident.assignee else ''}."
            )
        elif action in ("resolve", "close"):
            state = State.RESOLVED if action == "resolve" else State.CLOSED
            incident = services.incident_set_state(actor=user, incident=incident, state=state)
            done = f"{incident.number} is {incident.staff_state_label.lower()}."
        else:
            raise PortalError("Choose an action.")
        return done

    def _review(self, request, incident, bound, extra_context=None):
        can_act = self.has_change_permission(request, incident)
        active = incident.state in Incident.ACTIVE_STATES
        tz = vendor_tz()
        deadlines = [
            (name, due.astimezone(tz))
            for name, due in (
                ("First response by", incident.first_response_due_at),
                ("Next update by", incident.update_due_at if active else None),
            )
            if due is not None
        ]
        context = {
            **self.admin_site.each_context(request),
            "title": f"Incident {incident.number}",
            "subtitle": None,
            "opts": self.opts,
            "original": incident,
            "incident": incident,
            "has_view_permission": True,
            "can_act": can_act,
            "badges": self.render_badges(incident, timezone.now()),
            "breached": breached_names(incident),
            "next_deadline_name": deadline_name(incident),
            "deadlines": deadlines,
            "vendor_timezone": str(tz),
            "contact": services.support_contact(incident.account),
            "thread": list(incident.messages.select_related("author")),
            "history": self.history(incident),
            # A refused answer keeps its text on the page, even once the incident is shut.
            "answer_form": (
                (bound.get("answer") or (AnswerForm() if active else None)) if can_act else None
            ),
            "note_form": (bound.get("note") or NoteForm()) if can_act else None,
            "update_form": (
                (bound.get("update") or UpdateForm(incident=incident)) if can_act else None
            ),
            "may_resolve": can_act and incident.state in RESOLVABLE,
            "may_close": can_act and incident.state in CLOSABLE,
            **(extra_context or {}),
        }
        return TemplateResponse(request, self.review_template, context)


# --- planned maintenance ---------------------------------------------------------------------


class MaintenanceNoticeForm(forms.ModelForm):
    class Meta:
        model = MaintenanceNotice
        fields = ["title", "body", "starts_at", "ends_at", "published"]

    def clean(self):
        data = super().clean()
        starts, ends = data.get("starts_at"), data.get("ends_at")
        if starts and ends and ends <= starts:
            self.add_error("ends_at", "The maintenance must end after it starts.")
        return data


@admin.register(MaintenanceNotice)
class MaintenanceNoticeAdmin(AuditedAdmin):
    """Planned maintenance: published notices show on the service-level page until they end."""

    form = MaintenanceNoticeForm
    list_display = ["title", "starts_at", "ends_at", "published", "created_at"]
    list_filter = ["published"]
    search_fields = ["title"]
    ordering = ["-starts_at"]
    fields = ["title", "body", "starts_at", "ends_at", "published"]
