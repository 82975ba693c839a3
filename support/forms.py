from django import forms

from .models import Incident


class IncidentForm(forms.Form):
    subject = forms.CharField(max_length=200)
    severity = forms.ChoiceField(choices=Incident.Severity.choices, initial="P3")
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 6}), max_length=20_000)
    confirm_extra = forms.BooleanField(
        required=False, label="I confirm the price of an extra incident"
    )


class ReplyForm(forms.Form):
    body = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}), max_length=20_000, label="Message"
    )
