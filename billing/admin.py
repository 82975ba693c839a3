"""Staff console for billing. The ledger is read here; an adjustment is its only write."""

from decimal import Decimal

from django import forms
from django.contrib import admin

from accounts.errors import PortalError
from accounts.models import CURRENCIES, Account

from . import services
from .models import LedgerEntry
from .money import Money


class LedgerAdjustmentForm(forms.ModelForm):
    """Adding an entry in the console is a staff adjustment, made by the service."""

    account = forms.ModelChoiceField(queryset=Account.objects.order_by("name"))
    currency = forms.ChoiceField(choices=[(c, c) for c in CURRENCIES])
    amount = forms.DecimalField(
        max_digits=14,
        decimal_places=2,
        help_text="Positive adds credit, negative removes it (never below zero).",
    )
    description = forms.CharField(max_length=300, label="Reason (the customer reads it)")

    class Meta:
        model = LedgerEntry
        fields = ["account", "currency", "amount", "description"]

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        try:
            self.entry = services.ledger_adjust(
                actor=self.request_user,
                account=data["account"],
                amount=Money(Decimal(data["amount"]), data["currency"]),
                reason=data["description"],
            )
        except PortalError as exc:
            field = exc.field if exc.field in self.fields else None
            raise forms.ValidationError({field: exc.message} if field else exc.message) from exc
        return data


@admin.register(LedgerEntry)
class LedgerEntryAdmin(admin.ModelAdmin):
    list_display = [
        "created_at",
        "account",
        "currency",
        "sequence",
        "amount",
        "balance_after",
        "kind",
        "description",
        "created_by",
    ]
    list_filter = ["kind", "currency"]
    search_fields = ["account__name", "description", "reference"]
    list_select_related = ["account", "created_by"]
    date_hierarchy = "created_at"
    form = LedgerAdjustmentForm

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        form.request_user = request.user
        return form

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["account", "currency", "amount", "description"]
        return [f.name for f in LedgerEntry._meta.fields]

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else [f.name for f in LedgerEntry._meta.fields]

    def save_model(self, request, obj, form, change):
        # The adjustment was made (locked, checked, audited) by the service in clean().
        obj.pk = form.entry.pk

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
