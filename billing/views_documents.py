"""Billing pages: the billing details form, and invoices and credit notes as PDF."""

from django import forms
from django.contrib import messages
from django.shortcuts import redirect, render

from accounts.errors import PortalError
from accounts.views import member_view

from . import selectors, services
from .api_documents import pdf_response
from .pdf import credit_note_pdf, invoice_pdf


class BillingDetailsForm(forms.Form):
    legal_name = forms.CharField(required=False, max_length=200, label="Legal name")
    address_line1 = forms.CharField(required=False, max_length=200, label="Address")
    address_line2 = forms.CharField(required=False, max_length=200, label="Address (second line)")
    postal_code = forms.CharField(required=False, max_length=20, label="Postal code")
    city = forms.CharField(required=False, max_length=100, label="City")
    region = forms.CharField(required=False, max_length=100, label="Region or state")
    country = forms.CharField(
        required=False, max_length=2, label="Country (two letters: DE, FR, US…)"
    )
    tax_id = forms.CharField(required=False, max_length=40, label="Tax ID (VAT number)")
    billing_emails = forms.CharField(
        required=False,
        max_length=500,
        label="Also send receipts and credit notes to (comma-separated)",
    )
    po_reference = forms.CharField(required=False, max_length=60, label="Purchase-order reference")


@member_view("billing", on_licence_screen=True)
def billing_details(request):
    account = request.portal.account
    details = selectors.billing_details_get(account=account)
    initial = {name: getattr(details, name) for name in BillingDetailsForm.base_fields}
    initial["billing_emails"] = ", ".join(details.billing_emails or [])
    form = BillingDetailsForm(request.POST or None, initial=initial)
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            services.billing_details_update(
                actor=request.user, account=account, data=form.cleaned_data
            )
        except PortalError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
            status = 400
        else:
            messages.success(request, "Billing details saved. Invoices from now on show them.")
            return redirect("settings_billing")
    elif request.method == "POST":
        status = 400
    return render(
        request,
        "billing/details.html",
        {"tab": "billing", "account": account, "form": form},
        status=status,
    )


@member_view("billing", on_licence_screen=True)
def invoice_download(request, number: str):
    invoice = selectors.invoice_get(account=request.portal.account, number=number)
    return pdf_response(invoice_pdf(invoice), invoice.number)


@member_view("billing", on_licence_screen=True)
def credit_note_download(request, number: str):
    note = selectors.credit_note_get(account=request.portal.account, number=number)
    return pdf_response(credit_note_pdf(note), note.number)
