"""Buying from the catalogue, and renewing on-premise support, from the Billing page."""

from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.contrib import messages
from django.shortcuts import redirect, render

from accounts import formatting
from accounts.errors import PortalError
from accounts.views import member_view

from . import selectors, services
from .money import Money


def _order_message(request, order, what: str, *, paid_to: str = "billing_addons"):
    """Where a placed order goes: back to Billing when paid, else to the order's page,
    which says how to pay it."""
    if order.status == order.Status.PAID:
        messages.success(
            request,
            f"{what} is yours now (order {order.number}, "
            f"{formatting.money(order.total, order.currency)}).",
        )
        return redirect(paid_to)
    messages.warning(
        request,
        f"Order {order.number} is placed; {what.lower()} is yours the moment it is paid.",
    )
    return redirect("billing_order", order_id=order.pk)


def confirm_words(totals) -> str:
    """The confirmation button: nothing is paid in the portal with the manual gateway."""
    if totals is None or totals.due.amount == 0 or settings.BILLING_GATEWAY == "manual":
        return "Place the order"
    return f"Confirm and pay {formatting.money(totals.due.amount, totals.currency)}"


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
    quote, totals, error, status = None, None, "", 200
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
                return _order_message(request, order, "What you bought")
            today = selectors.account_today(account)
            quote = services.purchase_quote(account=account, items=items, today=today)
            totals = services.order_totals(account=account, lines=quote.lines, today=today)
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
            "totals": totals,
            "confirm": confirm_words(totals),
            "gateway": settings.BILLING_GATEWAY,
            "error": error,
        },
        status=status,
    )


@member_view(need="billing", on_licence_screen=True)
def support_renew(request):
    """Preview the renewal of on-premise support for N users, then confirm it."""
    if request.method != "POST":
        return redirect("billing_plan")
    account = request.portal.account
    try:
        users = int(request.POST.get("users", ""))
    except ValueError:
        messages.error(request, "Give the number of users to renew support for.")
        return redirect("billing_plan")
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
                {
                    "tab": "billing",
                    "account": account,
                    "quote": quote,
                    "confirm": "Place the order"
                    if settings.BILLING_GATEWAY == "manual"
                    else f"Confirm and pay {quote.amount}",
                },
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
        return redirect("billing_plan")
    return _order_message(request, order, "The support renewal", paid_to="billing_plan")
