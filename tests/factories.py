"""Factories for every app's tests. One place, so each model is built one way."""

from datetime import timedelta

import factory
from allauth.account.models import EmailAddress
from django.utils import timezone

from accounts import services
from accounts.models import Account, Invitation, Membership, Reseller, User

PASSWORD = "correct-horse-battery-staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"person{n}@example.com")
    full_name = factory.Faker("name")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def verified_email(self, create, extracted, **kwargs):
        if create:
            self.save()
            EmailAddress.objects.get_or_create(
                user=self, email=self.email, defaults={"primary": True, "verified": True}
            )


class ResellerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Reseller

    name = factory.Sequence(lambda n: f"Partner {n}")
    support_email = "help@partner.example"


class AccountFactory(factory.django.DjangoModelFactory):
    """An account with an owner (seat holder and support contact), made by the service."""

    class Meta:
        model = Account

    name = factory.Sequence(lambda n: f"Company {n}")
    timezone = "UTC"
    currency = "USD"
    seats_paid = 5

    @classmethod
    def _create(cls, model_class, *args, owner=None, **kwargs):
        owner = owner or UserFactory()
        account = services.account_create(
            owner=owner,
            name=kwargs["name"],
            timezone_name=kwargs.get("timezone", "UTC"),
            currency=kwargs.get("currency", "USD"),
            seats_paid=kwargs.get("seats_paid", 5),
            reseller=kwargs.get("reseller"),
        )
        extra = {k: v for k, v in kwargs.items() if k in ("status",)}
        if extra:
            Account.objects.filter(pk=account.pk).update(**extra)
            account.refresh_from_db()
        return account


def owner_of(account: Account) -> User:
    return Membership.objects.get(account=account, role="owner", is_support_contact=True).user


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    account = factory.SubFactory(AccountFactory)
    user = factory.SubFactory(UserFactory)
    role = Membership.Role.MEMBER
    has_seat = True
    is_active = True


class InvitationFactory(factory.django.DjangoModelFactory):
    """A pending invitation. The raw token is on `invitation.token`."""

    class Meta:
        model = Invitation

    account = factory.SubFactory(AccountFactory)
    email = factory.Sequence(lambda n: f"invitee{n}@example.com")
    role = Membership.Role.MEMBER
    with_seat = True
    nonce = factory.Faker("hexify", text="^" * 32)
    expires_at = factory.LazyFunction(lambda: timezone.now() + timedelta(days=7))

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        invitation = super()._create(model_class, *args, **kwargs)
        invitation.token = services.invitation_token(invitation)
        return invitation
