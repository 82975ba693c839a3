"""An account's billing details: who it is on its invoices, and who gets billing mail.

The tax ID is checked for its country's format with python-stdnum, and an EU VAT number
also for its check digits. Edited by owners and billing admins; every change audited.
"""

import re
import zoneinfo
from functools import cache
from pathlib import Path

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone
from stdnum.exceptions import ValidationError as NumberError
from stdnum.util import get_cc_module

from accounts.errors import PortalError
from accounts.models import Account
from accounts.services import audit_record, clean_text

from ..locks import lock_account
from ..models import BillingDetails
from ..tax import EU
from .common import require_billing_role

# stdnum and VAT prefixes that differ from ISO 3166 (Greece's VAT numbers start with EL).
VAT_PREFIX = {"GR": "EL"}
MAX_BILLING_EMAILS = 5
FIELDS = (
    "legal_name",
    "address_line1",
    "address_line2",
    "city",
    "postal_code",
    "region",
    "country",
    "tax_id",
    "billing_emails",
    "po_reference",
)


@cache
def countries() -> frozenset[str]:
    """ISO 3166 codes from the time zone database's table (empty if it is missing)."""
    for folder in zoneinfo.TZPATH:
        table = Path(folder) / "iso3166.tab"
        if table.exists():
            return frozenset(
                line.split("\t", 1)[0]
                for line in table.read_text().splitlines()
                if line and not line.startswith("#")
            )
    return frozenset()


def clean_country(value) -> str:
    code = (value or "").strip().upper()
    if not code:
        return ""
    known = countries()
    if not re.fullmatch(r"[A-Z]{2}", code) or (known and code not in known):
        raise PortalError(
            f"“{value}” is not a country code: give its two letters (DE, FR, US…).",
            field="country",
        )
    return code


def clean_tax_id(value, country: str) -> str:
    """The tax ID in its compact form, checked for the country's format (and an EU VAT
    number for its check digits)."""
    raw = (value or "").strip()
    if not raw:
        return ""
    if not country:
        raise PortalError("Give the country the tax ID belongs to.", field="country")
    if country in EU:
        from stdnum.eu import vat

        prefix = VAT_PREFIX.get(country, country)
        number = raw.upper().replace(" ", "").replace("-", "").replace(".", "")
        if not number.startswith(prefix):
            number = prefix + number
        try:
            return vat.validate(number)
        except NumberError as exc:
            raise PortalError(
                f"“{raw}” is not a valid {country} VAT number: {exc.message}", field="tax_id"
            ) from None
    module = get_cc_module(country.lower(), "vat") or get_cc_module(country.lower(), "tin")
    if module is None:
        return clean_text(raw, field="tax_id", label="the tax ID", max_length=40)
    try:
        return module.validate(raw)
    except NumberError as exc:
        raise PortalError(
            f"“{raw}” is not a valid tax ID for {country}: {exc.message}", field="tax_id"
        ) from None


def clean_emails(value) -> list[str]:
    if isinstance(value, str):
        value = [part for part in re.split(r"[,;\s]+", value) if part]
    if not isinstance(value, list | tuple):
        raise PortalError("Give the billing mail addresses as a list.", field="billing_emails")
    emails = []
    for item in value:
        email = str(item).strip().lower()
        try:
            validate_email(email)
        except DjangoValidationError:
            raise PortalError(
                f"“{item}” is not an email address.", field="billing_emails"
            ) from None
        if email not in emails:
            emails.append(email)
    if len(emails) > MAX_BILLING_EMAILS:
        raise PortalError(
            f"Give at most {MAX_BILLING_EMAILS} billing mail addresses.", field="billing_emails"
        )
    return emails


def billing_details_update(*, actor, account: Account, data: dict) -> BillingDetails:
    """Change the account's billing details (only the fields given); audited. What was
    invoiced keeps the details of its day."""
    unknown = set(data) - set(FIELDS)
    if unknown:
        raise PortalError(
            f"“{sorted(unknown)[0]}” is not a billing detail.", field=sorted(unknown)[0]
        )
    with transaction.atomic():
        account = lock_account(account)
        require_billing_role(actor=actor, account=account)
        details, _ = BillingDetails.objects.get_or_create(account=account)
        new = {name: getattr(details, name) for name in FIELDS}
        texts = {
            "legal_name": ("the legal name", 200),
            "address_line1": ("the address", 200),
            "address_line2": ("the address's second line", 200),
            "city": ("the city", 100),
            "postal_code": ("the postal code", 20),
            "region": ("the region", 100),
            "po_reference": ("the purchase-order reference", 60),
        }
        for name, (label, length) in texts.items():
            if name in data:
                new[name] = clean_text(
                    data[name], field=name, label=label, max_length=length, required=False
                )
        if "country" in data:
            new["country"] = clean_country(data["country"])
        if "tax_id" in data or "country" in data:
            new["tax_id"] = clean_tax_id(data.get("tax_id", details.tax_id), new["country"])
        if "billing_emails" in data:
            new["billing_emails"] = clean_emails(data["billing_emails"])
        changes = {
            name: [getattr(details, name), value]
            for name, value in new.items()
            if getattr(details, name) != value
        }
        if not changes:
            return details
        for name, value in new.items():
            setattr(details, name, value)
        details.updated_at = timezone.now()
        details.save()
        audit_record(
            actor=actor,
            action="billing_details.changed",
            target=details,
            account=account,
            changes=changes,
        )
    return details
