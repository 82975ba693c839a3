from django import forms
from django.contrib.auth import password_validation

from .models import CURRENCIES, Membership, timezone_choices


def _timezone_field():
    return forms.ChoiceField(
        choices=timezone_choices,
        initial="UTC",
        help_text="Refund and renewal windows are counted in this zone's local dates.",
    )


def _currency_field():
    return forms.ChoiceField(choices=[(c, c) for c in CURRENCIES], initial="USD")


def _clean_with(field, label, max_length, required=True):
    """Form validation by the same rule the services apply."""

    def clean(self):
        from .errors import PortalError
        from .services import clean_text

        try:
            return clean_text(
                self.cleaned_data.get(field),
                field=field,
                label=label,
                max_length=max_length,
                required=required,
            )
        except PortalError as exc:
            raise forms.ValidationError(exc.message) from exc

    return clean


class AccountFieldsMixin(forms.Form):
    company = forms.CharField(max_length=200, label="Company name")
    timezone = _timezone_field()
    currency = _currency_field()

    clean_company = _clean_with("company", "the company's name", 200)


class SignupCompanyForm(AccountFieldsMixin):
    """Extra fields on allauth's sign-up form: the person and the company they sign up."""

    full_name = forms.CharField(max_length=150, label="Your name")
    field_order = ["full_name", "company", "timezone", "currency"]

    clean_full_name = _clean_with("full_name", "your name", 150)

    def signup(self, request, user):
        from .services import account_create, user_update_profile

        user_update_profile(user=user, full_name=self.cleaned_data["full_name"])
        account_create(
            owner=user,
            name=self.cleaned_data["company"],
            timezone_name=self.cleaned_data["timezone"],
            currency=self.cleaned_data["currency"],
        )


class AccountCreateForm(AccountFieldsMixin):
    pass


class ProfileForm(forms.Form):
    full_name = forms.CharField(max_length=150, required=False, label="Your name")

    clean_full_name = _clean_with("full_name", "your name", 150, required=False)


class InviteForm(forms.Form):
    email = forms.EmailField(label="Email address", max_length=254)
    role = forms.ChoiceField(choices=Membership.Role.choices, initial=Membership.Role.MEMBER)
    with_seat = forms.BooleanField(required=False, initial=True, label="Give a licensed seat")


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Membership.Role.choices)


class SeatForm(forms.Form):
    has_seat = forms.TypedChoiceField(
        choices=[("1", "Give a seat"), ("0", "Take the seat")], coerce=lambda v: v == "1"
    )


class ReactivateForm(forms.Form):
    with_seat = forms.BooleanField(required=False, initial=True)


class InvitationSignupForm(forms.Form):
    full_name = forms.CharField(max_length=150, label="Your name")

    clean_full_name = _clean_with("full_name", "your name", 150)
    password1 = forms.CharField(
        widget=forms.PasswordInput,
        label="Password",
        help_text=password_validation.password_validators_help_text_html,
    )
    password2 = forms.CharField(widget=forms.PasswordInput, label="Password (again)")

    def clean(self):
        data = super().clean()
        if data.get("password1") and data.get("password1") != data.get("password2"):
            self.add_error("password2", "The two passwords differ.")
        return data
