from django.urls import path

from . import api

urlpatterns = [
    path("me/", api.MeView.as_view(), name="api_me"),
    path("accounts/", api.AccountListView.as_view(), name="api_accounts"),
    path("accounts/<id:account_id>/", api.AccountDetailView.as_view(), name="api_account"),
    path("accounts/<id:account_id>/members/", api.MemberListView.as_view(), name="api_members"),
    path(
        "accounts/<id:account_id>/members/<id:membership_id>/",
        api.MemberDetailView.as_view(),
        name="api_member",
    ),
    path(
        "accounts/<id:account_id>/members/<id:membership_id>/deactivate/",
        api.MemberDeactivateView.as_view(),
        name="api_member_deactivate",
    ),
    path(
        "accounts/<id:account_id>/members/<id:membership_id>/reactivate/",
        api.MemberReactivateView.as_view(),
        name="api_member_reactivate",
    ),
    path(
        "accounts/<id:account_id>/invitations/",
        api.InvitationListView.as_view(),
        name="api_invitations",
    ),
    path(
        "accounts/<id:account_id>/invitations/<id:invitation_id>/",
        api.InvitationDetailView.as_view(),
        name="api_invitation",
    ),
    path(
        "accounts/<id:account_id>/invitations/<id:invitation_id>/resend/",
        api.InvitationResendView.as_view(),
        name="api_invitation_resend",
    ),
    path(
        "accounts/<id:account_id>/support-contact/",
        api.SupportContactView.as_view(),
        name="api_support_contact",
    ),
]
