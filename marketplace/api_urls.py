from django.urls import path

from . import api

urlpatterns = [
    path("marketplace/apps/", api.AppListView.as_view(), name="api_marketplace_apps"),
    path("marketplace/apps/<slug:slug>/", api.AppDetailView.as_view(), name="api_marketplace_app"),
    path(
        "accounts/<id:account_id>/installations/",
        api.InstallationListView.as_view(),
        name="api_installations",
    ),
    path(
        "accounts/<id:account_id>/installations/<id:installation_id>/",
        api.InstallationDetailView.as_view(),
        name="api_installation",
    ),
    path(
        "accounts/<id:account_id>/installations/<id:installation_id>/cancel/",
        api.InstallationCancelView.as_view(),
        name="api_installation_cancel",
    ),
    path(
        "accounts/<id:account_id>/installations/<id:installation_id>/uninstall/",
        api.InstallationUninstallView.as_view(),
        name="api_installation_uninstall",
    ),
    path(
        "accounts/<id:account_id>/installations/<id:installation_id>/refund/",
        api.InstallationRefundView.as_view(),
        name="api_installation_refund",
    ),
    path(
        "accounts/<id:account_id>/entitlements/",
        api.EntitlementsView.as_view(),
        name="api_entitlements",
    ),
    path(
        "developer/installations/",
        api.DeveloperInstallationListView.as_view(),
        name="api_developer_installations",
    ),
    path(
        "developer/installations/<id:installation_id>/",
        api.DeveloperLicenceView.as_view(),
        name="api_developer_installation",
    ),
    path(
        "developer/installations/<id:installation_id>/usage/",
        api.DeveloperUsageView.as_view(),
        name="api_developer_usage",
    ),
    path(
        "developer/installations/<id:installation_id>/usage/batch/",
        api.DeveloperUsageBatchView.as_view(),
        name="api_developer_usage_batch",
    ),
]
