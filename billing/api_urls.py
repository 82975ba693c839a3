from django.urls import path

from . import api, api_purchases

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
    path(
        "accounts/<id:account_id>/orders/<id:order_id>/pay/",
        api.OrderPayView.as_view(),
        name="api_order_pay",
    ),
    path("accounts/<id:account_id>/ledger/", api.LedgerView.as_view(), name="api_ledger"),
    path(
        "accounts/<id:account_id>/catalogue/",
        api_purchases.CatalogueView.as_view(),
        name="api_catalogue",
    ),
    path(
        "accounts/<id:account_id>/purchases/preview/",
        api_purchases.PurchasePreviewView.as_view(),
        name="api_purchase_preview",
    ),
    path(
        "accounts/<id:account_id>/purchases/",
        api_purchases.PurchaseView.as_view(),
        name="api_purchase",
    ),
    path(
        "accounts/<id:account_id>/payments/",
        api_purchases.PaymentListView.as_view(),
        name="api_payments",
    ),
    path(
        "accounts/<id:account_id>/licences/",
        api_purchases.LicencesView.as_view(),
        name="api_licences",
    ),
    path(
        "accounts/<id:account_id>/support/renewal/preview/",
        api_purchases.SupportRenewalPreviewView.as_view(),
        name="api_support_renewal_preview",
    ),
    path(
        "accounts/<id:account_id>/support/renewal/",
        api_purchases.SupportRenewalView.as_view(),
        name="api_support_renewal",
    ),
    path(
        "accounts/<id:account_id>/credits/",
        api_purchases.CreditsView.as_view(),
        name="api_credits",
    ),
    path(
        "accounts/<id:account_id>/credits/use/",
        api_purchases.CreditUseView.as_view(),
        name="api_credits_use",
    ),
    path("accounts/<id:account_id>/usage/", api_purchases.UsageView.as_view(), name="api_usage"),
    path(
        "licences/activate/",
        api_purchases.LicenceActivateView.as_view(),
        name="api_licence_activate",
    ),
]
