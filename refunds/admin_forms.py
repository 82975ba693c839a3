"""Forms of the staff console's refund review page.

They only collect input: the amounts, reasons and references are checked by the
services (refunds.services), whose messages the page shows.
"""

from django import forms

from billing.money import Money


class LineDecisionForm(forms.Form):
    """Approve a line (up to the engine's ceiling) or deny it with a reason."""

    decision = forms.ChoiceField(
        choices=[("approve", "Approve"), ("deny", "Deny")],
        widget=forms.RadioSelect,
        initial="approve",
    )
    amount = forms.CharField(
        required=False,
        max_length=30,
        label="Amount to approve",
    )
    reason = forms.CharField(
        required=False,
        max_length=500,
        label="Reason (the customer reads it)",
        widget=forms.TextInput(attrs={"size": 50}),
    )

    def __init__(self, *args, line, **kwargs):
        self.line = line
        initial = kwargs.setdefault("initial", {})
        if line.decision == "denied":
            initial.setdefault("decision", "deny")
            initial.setdefault("reason", line.deny_reason)
        amount = line.approved_amount if line.approved_amount is not None else line.engine_amount
        initial.setdefault("amount", Money(amount, line.request.currency).rounded().amount)
        super().__init__(*args, prefix=f"line-{line.pk}", **kwargs)

    @property
    def approve(self) -> bool:
        return self.cleaned_data["decision"] == "approve"


class AskInfoForm(forms.Form):
    question = forms.CharField(
        required=False,
        max_length=5000,
        label="Ask the customer",
        help_text="The review clock stops until they answer.",
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, prefix="ask", **kwargs)


class ManualPayoutForm(forms.Form):
    reference = forms.CharField(
        required=False,
        max_length=120,
        label="Reference",
        help_text="The bank transfer's reference: recording it completes the payout.",
    )

    def __init__(self, *args, payout, **kwargs):
        self.payout = payout
        super().__init__(*args, prefix=f"payout-{payout.pk}", **kwargs)
