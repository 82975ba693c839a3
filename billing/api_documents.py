"""Billing API: billing details, invoices and credit notes (with their PDFs)."""

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from accounts.api import validated_input
from accounts.pagination import PaginatedView

from . import selectors, services
from .api import BillingView
from .models import BillingDetails, CreditNote, Invoice, InvoiceLine
from .pdf import credit_note_pdf, invoice_pdf
from .services.details import FIELDS as DETAIL_FIELDS


def _cents():
    """Money as the rest of the API gives it: two decimals."""
    return serializers.DecimalField(max_digits=14, decimal_places=2, read_only=True)


class BillingDetailsOut(serializers.ModelSerializer):
    class Meta:
        model = BillingDetails
        fields = [*DETAIL_FIELDS, "updated_at"]


class BillingDetailsIn(serializers.Serializer):
    legal_name = serializers.CharField(required=False, allow_blank=True, max_length=200)
    address_line1 = serializers.CharField(required=False, allow_blank=True, max_length=200)
    address_line2 = serializers.CharField(required=False, allow_blank=True, max_length=200)
    city = serializers.CharField(required=False, allow_blank=True, max_length=100)
    postal_code = serializers.CharField(required=False, allow_blank=True, max_length=20)
    region = serializers.CharField(required=False, allow_blank=True, max_length=100)
    country = serializers.CharField(
        required=False, allow_blank=True, max_length=2, help_text="ISO 3166 code (DE, FR, US…)."
    )
    tax_id = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=40,
        help_text="Checked for the country's format (an EU VAT number also for its check digits).",
    )
    billing_emails = serializers.ListField(
        child=serializers.EmailField(), required=False, max_length=5
    )
    po_reference = serializers.CharField(required=False, allow_blank=True, max_length=60)


class DocumentLineOut(serializers.ModelSerializer):
    unit_price, amount, tax_amount, total = _cents(), _cents(), _cents(), _cents()
    period_end = serializers.DateField(
        read_only=True,
        allow_null=True,
        help_text="The period's last day, inclusive, as the invoice prints it; null when the "
        "line has no period.",
    )

    class Meta:
        model = InvoiceLine
        fields = [
            "description",
            "period_start",
            "period_end",
            "quantity",
            "unit_price",
            "amount",
            "tax_name",
            "tax_rate",
            "tax_amount",
            "total",
        ]


class InvoiceOut(serializers.ModelSerializer):
    order = serializers.CharField(source="order.number")
    subtotal, tax_total, total = _cents(), _cents(), _cents()
    credit_applied, amount_paid = _cents(), _cents()
    status = serializers.SerializerMethodField()
    credit_notes = serializers.SerializerMethodField()

    class Meta:
        model = Invoice
        fields = [
            "number",
            "order",
            "issued_at",
            "paid_at",
            "currency",
            "subtotal",
            "tax_total",
            "total",
            "credit_applied",
            "amount_paid",
            "payment_method",
            "payment_reference",
            "status",
            "seller",
            "buyer",
            "credit_notes",
        ]

    def get_status(self, invoice) -> str:
        return "paid"

    def get_credit_notes(self, invoice) -> list[str]:
        return [note.number for note in invoice.credit_notes.all()]


class InvoiceDetailOut(InvoiceOut):
    lines = DocumentLineOut(many=True)

    class Meta(InvoiceOut.Meta):
        fields = [*InvoiceOut.Meta.fields, "lines"]


class CreditNoteLineOut(serializers.Serializer):
    description = serializers.CharField()
    amount, tax_amount, total = _cents(), _cents(), _cents()


class CreditNoteOut(serializers.ModelSerializer):
    invoice = serializers.CharField(source="invoice.number")
    subtotal, tax_total, total = _cents(), _cents(), _cents()
    refunded_to_card, credited_to_balance = _cents(), _cents()
    status = serializers.SerializerMethodField()

    class Meta:
        model = CreditNote
        fields = [
            "number",
            "invoice",
            "issued_at",
            "currency",
            "reason",
            "reference",
            "subtotal",
            "tax_total",
            "total",
            "refunded_to_card",
            "credited_to_balance",
            "status",
            "seller",
            "buyer",
        ]

    def get_status(self, note) -> str:
        return "issued"


class CreditNoteDetailOut(CreditNoteOut):
    lines = CreditNoteLineOut(many=True)

    class Meta(CreditNoteOut.Meta):
        fields = [*CreditNoteOut.Meta.fields, "lines"]


def pdf_response(content: bytes, number: str) -> HttpResponse:
    response = HttpResponse(content, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{number}.pdf"'
    return response


class BillingDetailsView(BillingView):
    @extend_schema(responses=BillingDetailsOut, summary="The account's billing details")
    def get(self, request, account_id):
        return Response(BillingDetailsOut(selectors.billing_details_get(account=self.account)).data)

    @extend_schema(
        request=BillingDetailsIn, responses=BillingDetailsOut, summary="Change the billing details"
    )
    def patch(self, request, account_id):
        data = validated_input(BillingDetailsIn, request)
        details = services.billing_details_update(
            actor=request.user, account=self.account, data=data
        )
        return Response(BillingDetailsOut(details).data)

    put = patch


class InvoiceListView(PaginatedView, BillingView):
    @extend_schema(responses=InvoiceOut(many=True), summary="The account's invoices, newest first")
    def get(self, request, account_id):
        rows = selectors.invoice_list(account=self.account, limit=None).prefetch_related(
            "credit_notes"
        )
        return self.paginated(rows, InvoiceOut)


class InvoiceDetailView(BillingView):
    @extend_schema(responses=InvoiceDetailOut, summary="One invoice with its lines")
    def get(self, request, account_id, number):
        return Response(
            InvoiceDetailOut(selectors.invoice_get(account=self.account, number=number)).data
        )


class InvoicePdfView(BillingView):
    @extend_schema(
        responses={(200, "application/pdf"): OpenApiTypes.BINARY}, summary="An invoice as PDF"
    )
    def get(self, request, account_id, number):
        invoice = selectors.invoice_get(account=self.account, number=number)
        return pdf_response(invoice_pdf(invoice), invoice.number)


class CreditNoteListView(PaginatedView, BillingView):
    @extend_schema(
        responses=CreditNoteOut(many=True), summary="The account's credit notes, newest first"
    )
    def get(self, request, account_id):
        return self.paginated(
            selectors.credit_note_list(account=self.account, limit=None), CreditNoteOut
        )


class CreditNoteDetailView(BillingView):
    @extend_schema(responses=CreditNoteDetailOut, summary="One credit note with its lines")
    def get(self, request, account_id, number):
        return Response(
            CreditNoteDetailOut(selectors.credit_note_get(account=self.account, number=number)).data
        )


class CreditNotePdfView(BillingView):
    @extend_schema(
        responses={(200, "application/pdf"): OpenApiTypes.BINARY}, summary="A credit note as PDF"
    )
    def get(self, request, account_id, number):
        note = selectors.credit_note_get(account=self.account, number=number)
        return pdf_response(credit_note_pdf(note), note.number)
