from django.urls import path

from . import views, views_documents, views_payment_method, views_purchases

urlpatterns = [
    path("settings/billing/", views.billing_overview, name="settings_billing"),
    path("settings/billing/plan-and-seats/", views.billing_plan, name="billing_plan"),
    path("settings/billing/add-ons/", views.billing_addons, name="billing_addons"),
    path("settings/billing/invoices/", views.billing_invoices, name="billing_invoices"),
    path("settings/billing/credits/", views.billing_credits, name="billing_credits"),
    path("settings/billing/refunds/", views.billing_refunds, name="billing_refunds"),
    path("settings/billing/orders/<id:order_id>/", views.order_detail, name="billing_order"),
    path("settings/billing/details/", views_documents.billing_details, name="billing_details"),
    path(
        "settings/billing/invoices/<str:number>.pdf",
        views_documents.invoice_download,
        name="invoice_download",
    ),
    path(
        "settings/billing/credit-notes/<str:number>.pdf",
        views_documents.credit_note_download,
        name="credit_note_download",
    ),
    path("settings/billing/seats/", views.seat_change, name="billing_seat_change"),
    path("settings/billing/cancel/", views.subscription_cancel, name="subscription_cancel"),
    path("settings/billing/plan/", views.plan_change, name="billing_plan_change"),
    path("settings/billing/start/", views.subscription_start, name="subscription_start"),
    path("settings/billing/buy/", views_purchases.buy, name="billing_buy"),
    path("settings/billing/support/renew/", views_purchases.support_renew, name="support_renew"),
    path("settings/billing/orders/<id:order_id>/pay/", views.order_pay, name="order_pay"),
    path("settings/billing/orders/<id:order_id>/cancel/", views.order_cancel, name="order_cancel"),
    path(
        "settings/billing/payment-method/",
        views_payment_method.payment_method,
        name="billing_payment_method",
    ),
]
