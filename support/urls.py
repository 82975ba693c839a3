from django.urls import path

from . import views

urlpatterns = [
    path("support/", views.support_home, name="support_home"),
    path("support/service-levels/", views.service_levels, name="service_levels"),
    path("support/incidents/<str:number>/", views.incident_detail, name="incident_detail"),
    path(
        "support/incidents/<str:number>/attachments/<int:attachment_id>/",
        views.incident_attachment,
        name="incident_attachment",
    ),
]
