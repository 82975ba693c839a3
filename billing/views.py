"""The Billing tab of Account Settings. The billing issue fills it; for now, seats."""

from django.conf import settings
from django.shortcuts import render
from django.utils import timezone

from accounts import selectors
from accounts.views import member_view


@member_view(need="billing")
def billing_overview(request):
    account = request.portal.account
    return render(
        request,
        "billing/overview.html",
        {
            "tab": "billing",
            "account": account,
            "usage": selectors.seat_usage(account=account, now=timezone.now()),
            "seat_holders": selectors.seat_holder_list(account=account),
            "billing_email": settings.VENDOR_BILLING_EMAIL,
        },
    )
