"""Forms of the staff console's incident review page.

They only collect input: the rules (which states take an answer, what a reclassified
incident becomes) are the services' (support.services), whose messages the page shows.
"""

from django import forms
from django.contrib.auth import get_user_model
from django.db.models import Q

from .models import Incident


class AnswerForm(forms.Form):
    """A public answer: the customer reads it; the first one is the first response."""

    body = forms.CharField(
        required=False,
        max_length=20_000,
        label="Answer the customer",
        widget=forms.Textarea(attrs={"rows": 5, "cols": 80}),
    )
    wait = forms.BooleanField(
        required=False,
        label="Wait for the customer",
        help_text="The incident waits on their answer; the update clock stops.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, prefix="answer", **kwargs)


class NoteForm(forms.Form):
    """An internal note: staff only, never shown or mailed to the customer."""

    body = forms.CharField(
        required=False,
        max_length=20_000,
        label="Internal note",
        help_text="Only staff see it.",
        widget=forms.Textarea(attrs={"rows": 3, "cols": 80}),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, prefix="note", **kwargs)


def support_staff():
    """Active staff who may handle incidents (by group, own permission or superuser)."""
    by_group = Q(
        groups__permissions__codename="change_incident",
        groups__permissions__content_type__app_label="support",
    )
    own = Q(
        user_permissions__codename="change_incident",
        user_permissions__content_type__app_label="support",
    )
    return (
        get_user_model()
        .objects.filter(is_active=True, is_staff=True)
        .filter(Q(is_superuser=True) | by_group | own)
        .distinct()
        .order_by("email")
    )


class UpdateForm(forms.Form):
    """Severity, scope (reclassify), billing (billed or free) and assignee, in one go."""

    severity = forms.ChoiceField(choices=Incident.Severity.choices)
    scope = forms.ChoiceField(
        choices=Incident.Scope.choices,
        help_text="Out of scope declines an active incident; back to standard opens a "
        "declined one, counted in the quota.",
    )
    billing = forms.ChoiceField(choices=Incident.Billing.choices)
    assignee = forms.ModelChoiceField(
        queryset=get_user_model().objects.none(),
        required=False,
        empty_label="— nobody —",
    )

    def __init__(self, *args, incident: Incident, **kwargs):
        self.incident = incident
        initial = kwargs.setdefault("initial", {})
        initial.setdefault("severity", incident.severity)
        initial.setdefault("scope", incident.scope)
        initial.setdefault("billing", incident.billing)
        initial.setdefault("assignee", incident.assignee_id)
        super().__init__(*args, prefix="update", **kwargs)
        queryset = support_staff()
        if incident.assignee_id:
            User = get_user_model()
            queryset = User.objects.filter(
                Q(pk__in=queryset.values("pk")) | Q(pk=incident.assignee_id)
            ).order_by("email")
        self.fields["assignee"].queryset = queryset
        self.fields["assignee"].label_from_instance = lambda user: user.email

    def clean_assignee(self):
        assignee = self.cleaned_data["assignee"]
        if assignee is None and self.incident.assignee_id:
            raise forms.ValidationError(
                "An assigned incident cannot be left with nobody: assign it to someone else."
            )
        return assignee
