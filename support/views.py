"""The Support page (the designated contact opens incidents; everyone sees the quota and
who the contact is) and the service-level page."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone

from accounts.errors import NotAllowed, PortalError
from accounts.uploads import download
from accounts.views import member_view
from billing.selectors import account_today, support_incident_price

from . import services
from .forms import IncidentForm, ReplyForm
from .models import Incident, IncidentAttachment, MaintenanceNotice


@member_view()
def support_home(request):
    account = request.portal.account
    today = account_today(account)
    refusal = services.support_refusal(account=account, user=request.user, today=today)
    form = IncidentForm(request.POST or None)
    status, extra_needed = 200, False
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            incident = services.incident_open(
                actor=request.user,
                account=account,
                subject=data["subject"],
                description=data["description"],
                severity=data["severity"],
                confirm_extra=data["confirm_extra"],
            )
        except NotAllowed as exc:
            form.add_error(None, str(exc))
            status = 403
        except PortalError as exc:
            extra_needed = exc.code == "extra_needed"
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
            status = 400
        else:
            if incident.state == Incident.State.DECLINED:
                messages.warning(
                    request,
                    f"{incident.number} is outside what support covers: "
                    f"{incident.get_scope_display().lower()}. It is available as a paid service "
                    "under Account Settings > Billing > Buy.",
                )
            elif incident.state == Incident.State.AWAITING_PAYMENT:
                messages.warning(
                    request, f"{incident.number} opens as soon as its order is paid (see Billing)."
                )
            else:
                messages.success(
                    request, f"{incident.number} is open; we answer by the targets below."
                )
            return redirect("incident_detail", number=incident.number)
    elif request.method == "POST":
        status = 400
    quota = (
        services.quota_get(account=account, today=today)
        if refusal is None or refusal.kind == "not_contact"
        else None
    )
    return render(
        request,
        "support/home.html",
        {
            "account": account,
            "refusal": refusal,
            "contact": services.support_contact(account),
            "quota": quota,
            "form": form,
            "extra_needed": extra_needed,
            "extra_price": support_incident_price(account),
            "incidents": Incident.objects.filter(account=account).order_by("-opened_at"),
            "docs_url": settings.SUPPORT_DOCS_URL,
            "support_email": settings.SUPPORT_EMAIL,
        },
        status=status,
    )


@member_view()
def incident_detail(request, number: str):
    account = request.portal.account
    incident = Incident.objects.filter(account=account, number=number).first()
    if incident is None:
        raise Http404("No such incident.")
    form = ReplyForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            services.incident_reply(
                actor=request.user, incident=incident, body=form.cleaned_data["body"]
            )
        except (PortalError, NotAllowed) as exc:
            form.add_error(None, getattr(exc, "message", str(exc)))
            status = 400
        else:
            messages.success(request, "Your message was sent.")
            return redirect("incident_detail", number=number)
    return render(
        request,
        "support/incident.html",
        {
            "account": account,
            "incident": incident,
            "thread": incident.messages.filter(internal=False).select_related("author"),
            "form": form,
        },
        status=status,
    )


@login_required
def service_levels(request):
    return render(
        request,
        "support/service_levels.html",
        {
            "targets": [
                (code, label, settings.SUPPORT_TARGETS[code])
                for code, label in Incident.Severity.choices
            ],
            "hours": settings.SUPPORT_HOURS,
            "vendor_timezone": settings.VENDOR_TIMEZONE,
            "notices": MaintenanceNotice.objects.filter(
                published=True, ends_at__gte=timezone.now()
            ),
        },
    )


@member_view()
def incident_attachment(request, number: str, attachment_id: int):
    """A file sent by mail with one of the account's incidents; any other answers 404."""
    attachment = (
        IncidentAttachment.objects.filter(
            pk=attachment_id, incident__number=number, incident__account=request.portal.account
        )
        .select_related("incident")
        .first()
    )
    if attachment is None:
        raise Http404("No such file.")
    return download(attachment.file, name=attachment.name, content_type=attachment.content_type)
