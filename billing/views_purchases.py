"""Buying from the catalogue, and renewing on-premise support, from the Billing page."""

from decimal import Decimal, InvalidOperation

from django.contrib import messages
from django.shortcuts import redirect, render

from accounts.errors import PortalError
from accounts.views import member_view

from . import selectors, services
from .money import Money


def _order_message(request, order, what: str) -> None:
    if order.status == order.Status.PAID:
        messages.success(
            request,
            f"{what} is yours now (order {order.number}, {order.total:.2f} {order.currency}).",
        )
    else:
        messages.warning(
            request,
            f"Order {order.number} awaits payment of {order.amount_due:.2f} {order.currency}; "
            f"{what.lower()} is yours the moment it is paid.",
        )


def _expected(request, currency: str) -> Money | None:
    try:
        return Money(Decimal(request.POST["expected"]), currency)
    except (KeyError, InvalidOperation, ValueError):
        return None


@member_view(need="billing", on_licence_screen=True)
def buy(request):
    """The catalogue: choose quantities, preview the order, confirm it."""
    account = request.portal.account
    prices = list(selectors.catalogue(account=account))
    quantities: dict[int, str] = {}
    quote, error, status = None, "", 200
    if request.method == "POST":
        items = []
        for price in prices:
            raw = request.POST.get(f"qty_{price.pk}", "").strip()
            quantities[price.pk] = raw
            if raw in ("", "0"):
                continue
            items.append({"price": price.pk, "quantity": raw})
        try:
            expected = _expected(request, account.currency)
            if request.POST.get("action") == "confirm" and expected is None:
                raise PortalError("Preview the order first: you confirm the total it shows.")
            if request.POST.get("action") == "confirm":
                order = services.purchase_place(
                    actor=request.user,
                    account=account,
                    items=items,
                    expected_total=expected,
                )
                _order_message(request, order, "What you bought")
                return redirect("settings_billing")
            quote = services.purchase_quote(
                account=account, items=items, today=selectors.account_today(account)
            )
        except PortalError as exc:
            error, status = exc.message, 400
    return render(
        request,
        "billing/buy.html",
        {
            "tab": "billing",
            "account": account,
            "rows": [(price, quantities.get(price.pk, "")) for price in prices],
            "quote": quote,
            "error": error,
        },
        status=status,
    )


@member_view(need="billing", on_licence_screen=True)
def support_renew(request):
    """Preview the renewal of on-premise support for N users, then confirm it."""
    if request.method != "POST":
        return redirect("settings_billing")
    account = request.portal.account
    try:
        users = int(request.POST.get("users", ""))
    except ValueError:
        messages.error(request, "Give the number of users to renew support for.")
        return redirect("settings_billing")
    renounce = request.POST.get("renounce") == "1"
    expected = _expected(request, account.currency)
    try:
        if request.POST.get("action") != "confirm" or expected is None:
            quote = selectors.support_renewal_quote(
                account=account, users=users, today=selectors.account_today(account)
            )
            return render(
                request,
                "billing/support_renew.html",
                {"tab": "billing", "account": account, "quote": quote},
            )
        order = services.support_renew(
            actor=request.user,
            account=account,
            users=users,
            renounce=renounce,
            expected_amount=expected,
        )
    except PortalError as exc:
        messages.error(request, exc.message)
        return redirect("settings_billing")
    _order_message(request, order, "The support renewal")
    return redirect("settings_billing")
