from django.urls import path

from . import views

urlpatterns = [
    path("marketplace/", views.marketplace_home, name="marketplace"),
    path("marketplace/apps/<slug:slug>/", views.marketplace_app, name="marketplace_app"),
    path(
        "marketplace/apps/<slug:slug>/install/",
        views.marketplace_install,
        name="marketplace_install",
    ),
    path(
        "marketplace/apps/<slug:slug>/cancel/", views.marketplace_cancel, name="marketplace_cancel"
    ),
    path(
        "marketplace/apps/<slug:slug>/change/", views.marketplace_change, name="marketplace_change"
    ),
]
