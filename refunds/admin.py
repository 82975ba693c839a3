"""Staff console: the active refund policy with its sections, and a simulator that runs
the engine for any account's lines on any date."""

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse

from accounts.admin import ReadOnlyAdmin
from accounts.models import Account
from billing.models import Order, OrderLine

from . import services
from .models import RefundSimulation
from .policy import PRESETS, REASON_LABELS, REASONS


class SimulateForm(forms.Form):
    account = forms.ModelChoiceField(queryset=Account.objects.order_by("name"))
    lines = forms.CharField(
        required=False,
        help_text="Order line ids, separated by commas; empty: every paid line of the account.",
    )
    on = forms.DateField(label="Request received on", help_text="The account's local date.")
    reason = forms.ChoiceField(choices=[(r, REASON_LABELS[r]) for r in REASONS])
    event = forms.DateField(required=False, label="Triggering event on")
    full_order = forms.BooleanField(required=False, label="Asks for the whole order")
    policy = forms.ChoiceField(choices=[(p.id, p.title) for p in PRESETS.values()])

    def clean_lines(self):
        raw = self.cleaned_data["lines"].replace(" ", "")
        if not raw:
            return []
        try:
            ids = [int(part) for part in raw.split(",") if part]
        except ValueError as exc:
            raise forms.ValidationError("Give line ids as numbers separated by commas.") from exc
        if any(not 0 < pk < 2**63 for pk in ids):
            raise forms.ValidationError("Give line ids as numbers separated by commas.")
        return ids


@admin.register(RefundSimulation)
class RefundSimulationAdmin(ReadOnlyAdmin):
    def changelist_view(self, request, extra_context=None):
        if not self.has_view_permission(request):
            raise PermissionDenied
        preset = services.active_preset()
        form = SimulateForm(
            request.GET or None,
            initial={"policy": preset.id, "reason": "no_longer_needed"},
        )
        rows, error = [], ""
        if form.is_bound and form.is_valid():
            data = form.cleaned_data
            account = data["account"]
            lines = OrderLine.objects.filter(
                order__account=account, order__status=Order.Status.PAID
            ).select_related("order")
            if data["lines"]:
                lines = lines.filter(pk__in=data["lines"])
            lines = list(lines.order_by("order__paid_at", "pk")[:200])
            if data["lines"] and len(lines) != len(set(data["lines"])):
                error = f"Some of those lines are not paid lines of {account.name}."
            elif not lines:
                error = f"{account.name} has no paid lines."
            else:
                decisions = services.decisions_for(
                    account=account,
                    lines=lines,
                    on=data["on"],
                    reason=data["reason"],
                    event=data["event"],
                    full_order=data["full_order"],
                    preset=PRESETS[data["policy"]],
                )
                if data["full_order"]:
                    lines = services.whole_orders(lines)
                rows = [(line, decisions[line.pk]) for line in lines]
        context = {
            **self.admin_site.each_context(request),
            "title": "Refund policy and simulator",
            "opts": self.model._meta,
            "preset": preset,
            "presets": PRESETS.values(),
            "form": form,
            "rows": rows,
            "error": error,
        }
        return TemplateResponse(request, "admin/refunds/simulate.html", context)
