from decimal import Decimal

from django import forms

from accounts import formatting

from .money import Money


def plan_label(price) -> str:
    """ "Professional: $31.00 per seat, monthly" in the account's locale."""
    per = " per seat" if price.scheme == "per_seat" else ""
    return (
        f"{price.product.name}: {formatting.money(price.amount, price.currency)}{per}, "
        f"{price.get_interval_display().lower()}"
    )


class SeatChangeForm(forms.Form):
    quantity = forms.IntegerField(min_value=1, max_value=100_000, label="Seats")
    # What the preview showed; the confirmation goes through only at that amount.
    expected = forms.DecimalField(
        required=False, max_digits=14, decimal_places=2, widget=forms.HiddenInput
    )

    def expected_amount(self, currency: str) -> Money | None:
        value = self.cleaned_data.get("expected")
        return None if value is None else Money(Decimal(value), currency)


class PlanChangeForm(forms.Form):
    price = forms.ModelChoiceField(queryset=None, label="Plan", empty_label=None)
    expected = forms.DecimalField(
        required=False, max_digits=14, decimal_places=2, widget=forms.HiddenInput
    )

    def __init__(self, *args, choices, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["price"].queryset = choices
        self.fields["price"].label_from_instance = plan_label

    def expected_amount(self, currency: str) -> Money | None:
        value = self.cleaned_data.get("expected")
        return None if value is None else Money(Decimal(value), currency)


class StartPlanForm(forms.Form):
    price = forms.ModelChoiceField(queryset=None, label="Plan", empty_label=None)
    quantity = forms.IntegerField(min_value=1, max_value=100_000, label="Seats")
    trial = forms.BooleanField(required=False, label="Start with the free trial")

    def __init__(self, *args, choices, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["price"].queryset = choices
        self.fields["price"].label_from_instance = plan_label
