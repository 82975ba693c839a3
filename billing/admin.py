"""Staff console for billing: the catalogue, and the ledger (read, and adjusted by staff)."""

from decimal import Decimal

from django import forms
from django.contrib import admin

from accounts.admin import AuditedAdmin, money_column
from accounts.errors import PortalError
from accounts.models import CURRENCIES, Account
from accounts.services import staff_object_save

from . import services
from .catalogue import price_terms_refusal
from .models import (
    CreditUse,
    LedgerEntry,
    Licence,
    LineRefund,
    Order,
    OrderLine,
    Payment,
    Price,
    Product,
    Subscription,
    UsageRecord,
)
from .money import Money


class PriceInlineFormSet(forms.BaseInlineFormSet):
    def clean(self):
        super().clean()
        product = self.instance
        for form in self.forms:
            data = getattr(form, "cleaned_data", None)
            if not data or data.get("DELETE"):
                continue
            refusal = price_terms_refusal(
                kind=product.kind,
                edition=product.edition,
                interval=data.get("interval"),
                scheme=data.get("scheme"),
                amount=data.get("amount") or 0,
            )
            if refusal:
                form.add_error("interval", refusal)


class PriceInline(admin.TabularInline):
    model = Price
    formset = PriceInlineFormSet
    fields = ["currency", "amount", "scheme", "interval", "is_active"]
    extra = 1
    can_delete = False


@admin.register(Product)
class ProductAdmin(AuditedAdmin):
    list_display = ["name", "code", "kind", "edition", "deployment", "units", "is_active"]
    list_filter = ["kind", "edition", "deployment", "is_active"]
    search_fields = ["name", "code"]
    prepopulated_fields = {"code": ["name"]}
    readonly_fields = ["created_at"]
    inlines = [PriceInline]

    def save_formset(self, request, form, formset, change):
        # Each price added or changed is saved and audited like the product itself.
        instances = formset.save(commit=False)
        for price_form in formset.forms:
            price = price_form.instance
            if price in instances:
                staff_object_save(
                    actor=request.user,
                    obj=price,
                    form=price_form,
                    changed_fields=price_form.changed_data,
                    created=price._state.adding,
                )


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
    order = forms.CharField(
        max_length=20,
        required=False,
        label="Order it corrects (optional)",
        help_text="A credit tied to a paid order (ORD-2026-000123) gets a credit note naming "
        "its invoice.",
    )

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
                order_number=data.get("order") or None,
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
            return ["account", "currency", "amount", "description", "order"]
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


class ReadOnlyRowsMixin:
    def has_add_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class OrderLineInline(ReadOnlyRowsMixin, admin.TabularInline):
    model = OrderLine
    fields = [
        "description",
        "kind",
        "quantity",
        "amount",
        "period_start",
        "period_end",
        "first_purchase",
        "units",
        "units_used",
        "delivery",
        "refunded",
        "units_refunded",
        "taken_back_at",
    ]
    readonly_fields = fields
    extra = 0
    can_delete = False


class PaymentInline(ReadOnlyRowsMixin, admin.TabularInline):
    model = Payment
    fields = ["gateway", "amount", "currency", "status", "reference", "created_at", "succeeded_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False


class RecordPaymentForm(forms.ModelForm):
    """Staff record the outside payment of an order awaiting it (the manual gateway)."""

    payment_reference = forms.CharField(
        max_length=120,
        required=False,
        help_text="The bank transfer's or cheque's reference. Saving with one marks the "
        "order paid and gives the account what it bought at once.",
    )

    class Meta:
        model = Order
        fields = []


@admin.register(Order)
class OrderAdmin(ReadOnlyRowsMixin, admin.ModelAdmin):
    form = RecordPaymentForm
    list_display = [
        "number",
        "account",
        "created_at",
        "total",
        "credit_applied",
        "currency",
        "status",
    ]
    list_filter = ["status", "currency"]
    search_fields = ["number", "account__name"]
    list_select_related = ["account"]
    date_hierarchy = "created_at"
    readonly_fields = [
        "number",
        "account",
        "status",
        "currency",
        "total",
        "credit_applied",
        "created_at",
        "paid_at",
        "created_by",
    ]
    inlines = [OrderLineInline, PaymentInline]

    actions = ["cancel_orders", "accept_services"]

    @admin.action(
        description="Record the paid services of these orders as delivered and accepted",
        permissions=["change"],
    )
    def accept_services(self, request, queryset):
        lines = OrderLine.objects.filter(order__in=queryset, kind="service").exclude(
            delivery=OrderLine.Delivery.ACCEPTED
        )
        for line in lines.select_related("order"):
            try:
                services.service_mark_accepted(actor=request.user, line=line)
            except PortalError as exc:
                self.message_user(request, f"{line.order.number}: {exc.message}", level="error")
            else:
                self.message_user(request, f"{line.order.number}: {line.description} accepted.")

    def get_fields(self, request, obj=None):
        fields = list(self.readonly_fields)
        if obj is not None and obj.status == Order.Status.AWAITING_PAYMENT:
            fields.append("payment_reference")
        return fields

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        if "payment_reference" in form.base_fields:
            form.base_fields["payment_reference"].required = True
        return form

    @admin.action(
        description="Cancel the unpaid order (returns its credit)", permissions=["change"]
    )
    def cancel_orders(self, request, queryset):
        for order in queryset:
            try:
                services.order_cancel(actor=request.user, order=order)
            except PortalError as exc:
                self.message_user(request, f"{order.number}: {exc.message}", level="error")
            else:
                self.message_user(request, f"{order.number} cancelled.")

    def save_model(self, request, obj, form, change):
        reference = form.cleaned_data.get("payment_reference")
        if not reference:
            return
        try:
            services.payment_record_manual(actor=request.user, order=obj, reference=reference)
        except PortalError as exc:
            self.message_user(request, exc.message, level="error")
        else:
            self.message_user(request, f"{obj.number} is paid; the account has what it bought.")


@admin.register(Subscription)
class SubscriptionAdmin(ReadOnlyRowsMixin, admin.ModelAdmin):
    list_display = [
        "account",
        "price",
        "quantity",
        "status",
        "current_period_start",
        "current_period_end",
        "cancel_at_period_end",
    ]
    list_filter = ["status", "price__product__kind", "price__product"]
    search_fields = ["account__name"]
    list_select_related = ["account", "price__product"]
    readonly_fields = [
        "account",
        "price",
        "quantity",
        "status",
        "current_period_start",
        "current_period_end",
        "trial_end",
        "cancel_at_period_end",
        "pending_price",
        "created_at",
    ]

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Payment)
class PaymentAdmin(ReadOnlyRowsMixin, admin.ModelAdmin):
    list_display = [
        "created_at",
        "account",
        "order",
        "gateway",
        "amount",
        "currency",
        "status",
        "reference",
    ]
    list_filter = ["status", "gateway", "currency"]
    search_fields = ["reference", "order__number", "account__name"]
    list_select_related = ["account", "order"]

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(LineRefund)
class LineRefundAdmin(ReadOnlyRowsMixin, admin.ModelAdmin):
    """What came back on each purchase: written by refunds' payouts, never by hand."""

    list_display = ["created_at", "reference", "line", money_column("amount"), "method", "payment"]
    list_filter = ["method", "currency"]
    search_fields = ["reference", "line__order__number", "line__order__account__name"]
    list_select_related = ["line", "payment"]

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Licence)
class LicenceAdmin(ReadOnlyRowsMixin, admin.ModelAdmin):
    """Licence keys: who holds them, for how many users, activated or not."""

    list_display = [
        "account",
        "product",
        "users",
        "renounced",
        "status",
        "issued_at",
        "activated_at",
    ]
    list_filter = ["status", "product__kind", "product"]
    search_fields = ["account__name", "line__order__number"]
    list_select_related = ["account", "product"]
    readonly_fields = [
        "account",
        "product",
        "line",
        "users",
        "renounced",
        "status",
        "issued_at",
        "activated_at",
        "revoked_at",
    ]
    actions = ["revoke"]

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request, obj)

    @admin.action(description="Revoke the selected keys", permissions=["change"])
    def revoke(self, request, queryset):
        for licence in queryset:
            services.licence_revoke(
                licence=licence, actor=request.user, reason="revoked in the console"
            )
        self.message_user(request, f"{queryset.count()} key(s) revoked.")


@admin.register(UsageRecord)
class UsageRecordAdmin(ReadOnlyRowsMixin, admin.ModelAdmin):
    list_display = ["used_on", "account", "product", "quantity", "reference", "line"]
    list_filter = ["product"]
    search_fields = ["account__name", "reference"]
    list_select_related = ["account", "product", "line"]
    date_hierarchy = "used_on"

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(CreditUse)
class CreditUseAdmin(ReadOnlyRowsMixin, admin.ModelAdmin):
    list_display = ["created_at", "account", "product", "units", "reference"]
    search_fields = ["account__name", "reference"]
    list_select_related = ["account", "product"]

    def has_change_permission(self, request, obj=None):
        return False


from . import admin_documents  # noqa: E402, F401  (invoices and credit notes)
