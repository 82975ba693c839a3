from django.urls import path

from . import api

urlpatterns = [
    path(
        "accounts/<id:account_id>/billing/", api.BillingOverviewView.as_view(), name="api_billing"
    ),
    path(
        "accounts/<id:account_id>/subscriptions/<id:subscription_id>/seats/preview/",
        api.SeatPreviewView.as_view(),
        name="api_seat_preview",
    ),
    path(
        "accounts/<id:account_id>/subscriptions/<id:subscription_id>/seats/",
        api.SeatChangeView.as_view(),
        name="api_seat_change",
    ),
    path(
        "accounts/<id:account_id>/subscriptions/<id:subscription_id>/plan/preview/",
        api.PlanPreviewView.as_view(),
        name="api_plan_preview",
    ),
    path(
        "accounts/<id:account_id>/subscriptions/<id:subscription_id>/plan/",
        api.PlanChangeView.as_view(),
        name="api_plan_change",
    ),
    path(
        "accounts/<id:account_id>/subscriptions/<id:subscription_id>/cancel/",
        api.CancelView.as_view(),
        name="api_subscription_cancel",
    ),
    path(
        "accounts/<id:account_id>/subscriptions/",
        api.StartView.as_view(),
        name="api_subscription_start",
    ),
    path("accounts/<id:account_id>/orders/", api.OrderListView.as_view(), name="api_orders"),
    path("accounts/<id:account_id>/ledger/", api.LedgerView.as_view(), name="api_ledger"),
]
