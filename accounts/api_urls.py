from django.urls import path

from . import api

urlpatterns = [
    path("me/", api.MeView.as_view(), name="api_me"),
    path("accounts/", api.AccountListView.as_view(), name="api_accounts"),
    path("accounts/<int:account_id>/", api.AccountDetailView.as_view(), name="api_account"),
    path("accounts/<int:account_id>/members/", api.MemberListView.as_view(), name="api_members"),
    path(
        "accounts/<int:account_id>/members/<int:membership_id>/",
        api.MemberDetailView.as_view(),
        name="api_member",
    ),
    path(
        "accounts/<int:account_id>/members/<int:membership_id>/deactivate/",
        api.MemberDeactivateView.as_view(),
        name="api_member_deactivate",
    ),
    path(
        "accounts/<int:account_id>/members/<int:membership_id>/reactivate/",
        api.MemberReactivateView.as_view(),
        name="api_member_reactivate",
    ),
    path(
        "accounts/<int:account_id>/invitations/",
        api.InvitationListView.as_view(),
        name="api_invitations",
    ),
    path(
        "accounts/<int:account_id>/invitations/<int:invitation_id>/",
        api.InvitationDetailView.as_view(),
        name="api_invitation",
    ),
    path(
        "accounts/<int:account_id>/invitations/<int:invitation_id>/resend/",
        api.InvitationResendView.as_view(),
        name="api_invitation_resend",
    ),
    path(
        "accounts/<int:account_id>/support-contact/",
        api.SupportContactView.as_view(),
        name="api_support_contact",
    ),
]
