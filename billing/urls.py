from django.urls import path

from . import views

urlpatterns = [path("settings/billing/", views.billing_overview, name="settings_billing")]
