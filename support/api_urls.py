from django.urls import path

from . import api

urlpatterns = [
    path(
        "accounts/<id:account_id>/support/",
        api.SupportEligibilityView.as_view(),
        name="api_support",
    ),
    path(
        "accounts/<id:account_id>/incidents/",
        api.IncidentListView.as_view(),
        name="api_incidents",
    ),
    path(
        "accounts/<id:account_id>/incidents/<str:number>/",
        api.IncidentDetailView.as_view(),
        name="api_incident",
    ),
    path(
        "accounts/<id:account_id>/incidents/<str:number>/messages/",
        api.IncidentMessageView.as_view(),
        name="api_incident_messages",
    ),
]
