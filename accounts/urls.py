from django.urls import path

from . import views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("switch/", views.account_switch, name="account_switch"),
    path("new-account/", views.account_new, name="account_new"),
    path("settings/profile/", views.settings_profile, name="settings_profile"),
    path("settings/profile/mail/", views.mail_preferences, name="mail_preferences"),
    path("settings/profile/api-token/", views.api_token, name="api_token"),
    path("settings/users/", views.settings_users, name="settings_users"),
    path(
        "settings/users/<id:membership_id>/<slug:action>/",
        views.member_action,
        name="member_action",
    ),
    path(
        "settings/invitations/<id:invitation_id>/<slug:action>/",
        views.invitation_action,
        name="invitation_action",
    ),
    path("invitations/<str:token>/", views.invitation_accept, name="invitation_accept"),
]
