"""Tax on what an account buys, from its billing country (and region) on the day of the
order: the staff's rates (TaxRate), or EU reverse charge for a business buyer with a valid
VAT ID in another EU country than the vendor's (0%, and the invoice says so). With no
rate for the country, tax is zero and nothing else changes."""

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.conf import settings

from accounts.models import Account

from .models import BillingDetails, TaxRate
from .money import Money

EU = frozenset(
    [
        "AT",
        "BE",
        "BG",
        "HR",
        "CY",
        "CZ",
        "DK",
        "EE",
        "FI",
        "FR",
        "DE",
        "GR",
        "HU",
        "IE",
        "IT",
        "LV",
        "LT",
        "LU",
        "MT",
        "NL",
        "PL",
        "PT",
        "RO",
        "SK",
        "SI",
        "ES",
        "SE",
    ]
)

REVERSE_CHARGE = "Reverse charge"
REVERSE_CHARGE_NOTE = (
    "Reverse charge: VAT to be accounted for by the recipient (Council Directive "
    "2006/112/EC, Article 196)."
)


@dataclass(frozen=True)
class TaxTerms:
    name: str = ""
    rate: Decimal = Decimal(0)  # per cent
    reverse_charge: bool = False

    def on(self, net: Money) -> Money:
        """The tax on a net amount, rounded half up once, to the currency's minor unit."""
        return (net * (self.rate / 100)).rounded()

    def describe(self) -> str:
        if self.reverse_charge:
            return REVERSE_CHARGE
        return f"{self.name} {self.rate.normalize():f}%" if self.rate else ""


NONE = TaxTerms()


def tax_terms(account: Account, on: date) -> TaxTerms:
    details = (
        BillingDetails.objects.filter(account=account).only("country", "region", "tax_id").first()
    )
    if details is None or not details.country:
        return NONE
    rates = TaxRate.objects.filter(country=details.country, valid_from__lte=on)
    return tax_terms_from(details, rates, on)


def tax_terms_from(details: BillingDetails | None, rates, on: date) -> TaxTerms:
    """The terms for billing details and the rates of their country (any dates: those
    from after `on` are left out); what tax_terms reads, for a caller that read both."""
    if details is None or not details.country:
        return NONE
    vendor = settings.VENDOR_COUNTRY.upper()
    if details.country in EU and details.tax_id and details.country != vendor:
        return TaxTerms(name=REVERSE_CHARGE, rate=Decimal(0), reverse_charge=True)
    valid = sorted(
        (rate for rate in rates if rate.country == details.country and rate.valid_from <= on),
        key=lambda rate: rate.valid_from,
        reverse=True,
    )
    region = details.region.casefold()
    rate = next((r for r in valid if region and r.region.casefold() == region), None)
    rate = rate or next((r for r in valid if r.region == ""), None)
    return TaxTerms(name=rate.name, rate=rate.rate) if rate else NONE


def lines_with_tax(
    account: Account, lines: list[dict], on: date, *, terms: TaxTerms | None = None
) -> list[dict]:
    """Order lines (net amounts) with their tax added: `amount` becomes what is charged,
    `tax_amount` the tax in it. `terms`: the account's on `on`, when the caller has them."""
    terms = terms if terms is not None else tax_terms(account, on)
    if not terms.rate and not terms.reverse_charge:
        return lines
    taxed = []
    for line in lines:
        net = Money(
            line["amount"], line["price"].currency if line.get("price") else account.currency
        )
        tax = terms.on(net)
        taxed.append(
            {
                **line,
                "amount": (net + tax).amount,
                "tax_amount": tax.amount,
                "tax_rate": terms.rate,
                "tax_name": terms.describe(),
            }
        )
    return taxed


def tax_preview(account: Account, net: Money, on: date) -> tuple[Money, Money, str]:
    """What a preview shows: the tax on a net amount, the total with it, and its name."""
    terms = tax_terms(account, on)
    tax = terms.on(net) if net.amount > 0 else Money.zero(net.currency)
    return tax, net + tax, terms.describe()
