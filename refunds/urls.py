from django.urls import path

from . import views

urlpatterns = [
    path("policies/<slug:name>/", views.policy_page, name="policy_page"),
    path(
        "settings/billing/orders/<id:order_id>/refund/",
        views.refund_request_new,
        name="refund_request_new",
    ),
    path(
        "settings/billing/refunds/<str:number>/",
        views.refund_request_detail,
        name="refund_request_detail",
    ),
]
