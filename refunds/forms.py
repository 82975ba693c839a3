from django import forms

from .models import RefundRequest
from .policy import REASON_LABELS, REASONS


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        single = super().clean
        if isinstance(data, list | tuple):
            return [single(item, initial) for item in data]
        return [single(data, initial)] if data else []


class RefundRequestForm(forms.Form):
    lines = forms.TypedMultipleChoiceField(coerce=int, label="Purchases")
    reason = forms.ChoiceField(choices=[(r, REASON_LABELS[r]) for r in REASONS])
    event_on = forms.DateField(
        required=False,
        label="When it happened",
        help_text="The date of the bug report, failed delivery or disputed charge, if any.",
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    text = forms.CharField(
        required=False, max_length=5000, widget=forms.Textarea(attrs={"rows": 4}), label="Tell us"
    )
    full_order = forms.BooleanField(required=False, label="I ask for the whole order back")
    payout_method = forms.ChoiceField(
        choices=RefundRequest.Payout.choices, widget=forms.RadioSelect, label="Pay it"
    )
    evidence = MultipleFileField(required=False, label="Evidence (PDF, images or text)")

    def __init__(self, *args, lines, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["lines"].choices = [(line.pk, line.description) for line in lines]
        self.fields["payout_method"].initial = RefundRequest.Payout.ORIGINAL


class MessageForm(forms.Form):
    body = forms.CharField(
        max_length=5000, widget=forms.Textarea(attrs={"rows": 3}), label="Message"
    )
    evidence = MultipleFileField(required=False, label="Attach files")
