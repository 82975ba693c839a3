from rest_framework import serializers

from .models import Account, Invitation, Membership, User


class UserOut(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = ["id", "email", "full_name"]


class AccountOut(serializers.ModelSerializer):
    reseller = serializers.CharField(
        source="reseller.name",
        default=None,
        allow_null=True,
        read_only=True,
        help_text="The partner it bought through; null when it bought from us.",
    )
    role = serializers.SerializerMethodField()
    seats_used = serializers.SerializerMethodField()

    class Meta:
        model = Account
        fields = [
            "id",
            "name",
            "timezone",
            "currency",
            "status",
            "reseller",
            "seats_paid",
            "seats_used",
            "role",
        ]

    def get_role(self, account) -> str | None:
        membership = self.context.get("memberships", {}).get(account.pk)
        return membership.role if membership else None

    def get_seats_used(self, account) -> int | None:
        usage = self.context.get("usage", {}).get(account.pk)
        return usage.used if usage else None


class MembershipBrief(serializers.ModelSerializer):
    account = serializers.IntegerField(source="account_id")
    account_name = serializers.CharField(source="account.name")

    class Meta:
        model = Membership
        fields = ["id", "account", "account_name", "role", "has_seat", "is_support_contact"]


class MeOut(serializers.ModelSerializer):
    memberships = serializers.SerializerMethodField()

    class Meta:
        model = User
        fields = ["id", "email", "full_name", "is_staff", "memberships"]

    def get_memberships(self, user) -> list[dict]:
        from .selectors import membership_list_for_user

        return MembershipBrief(membership_list_for_user(user=user), many=True).data


class MemberOut(serializers.ModelSerializer):
    user = UserOut()

    class Meta:
        model = Membership
        fields = [
            "id",
            "user",
            "role",
            "has_seat",
            "is_active",
            "is_support_contact",
            "created_at",
            "deactivated_at",
        ]


class MemberUpdateIn(serializers.Serializer):
    role = serializers.ChoiceField(choices=Membership.Role.choices, required=False)
    has_seat = serializers.BooleanField(required=False)

    def validate(self, attrs):
        if not attrs:
            raise serializers.ValidationError("Give `role`, `has_seat` or both.")
        return attrs


class ReactivateIn(serializers.Serializer):
    with_seat = serializers.BooleanField(default=True)


class InvitationIn(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    role = serializers.ChoiceField(choices=Membership.Role.choices, default=Membership.Role.MEMBER)
    with_seat = serializers.BooleanField(default=True)


class InvitationOut(serializers.ModelSerializer):
    invited_by = serializers.EmailField(source="invited_by.email", default=None)
    status = serializers.SerializerMethodField()

    class Meta:
        model = Invitation
        fields = [
            "id",
            "email",
            "role",
            "with_seat",
            "status",
            "invited_by",
            "created_at",
            "expires_at",
        ]

    def get_status(self, invitation) -> str:
        return invitation.effective_status(self.context["now"])


class SupportContactIn(serializers.Serializer):
    membership = serializers.IntegerField(min_value=1)


class SupportContactOut(serializers.Serializer):
    membership = serializers.IntegerField(source="id")
    user = UserOut()
