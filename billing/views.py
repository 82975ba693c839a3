"""The Billing tab of Account Settings: plan and seats, credit, orders."""

from django.conf import settings
from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils import timezone

from accounts import selectors
from accounts.errors import PortalError
from accounts.views import member_view

from . import selectors as billing_selectors
from . import services
from .forms import PlanChangeForm, SeatChangeForm, StartPlanForm
from .hooks import PAGE_EXTENSIONS


def _page(
    request,
    *,
    seat_form=None,
    quote=None,
    plan_form=None,
    plan_quote=None,
    start_form=None,
    status=200,
):
    account = request.portal.account
    now = timezone.now()
    today = billing_selectors.account_today(account, now)
    subscription = billing_selectors.subscription_current(account=account)
    usage = selectors.seat_usage(account=account, now=now)
    orders = list(billing_selectors.order_list(account=account))
    # The newest plan is None only for an account that never had one: the trial is for it.
    trial_available = subscription is None
    on_premise = billing_selectors.on_premise(account=account, today=today)
    # An on-premise account's seats are its licensed users: no cloud plan is offered.
    needs_start = on_premise is None and (
        subscription is None or subscription.status == subscription.Status.CANCELLED
    )
    if needs_start and start_form is None:
        start_form = StartPlanForm(
            choices=billing_selectors.start_choices(account=account),
            initial={"quantity": max(usage.used, 1), "trial": trial_available},
        )
    if subscription is not None and plan_form is None:
        plan_form = PlanChangeForm(
            choices=billing_selectors.plan_choices(subscription=subscription),
            initial={"price": subscription.pending_price or subscription.price},
        )
    return render(
        request,
        "billing/overview.html",
        {
            "tab": "billing",
            "account": account,
            "usage": usage,
            "seat_holders": selectors.seat_holder_list(account=account),
            "billing_email": settings.VENDOR_BILLING_EMAIL,
            "ledger": billing_selectors.ledger_view(account=account, currency=account.currency),
            "subscription": subscription,
            "seat_form": seat_form
            or SeatChangeForm(initial={"quantity": subscription.quantity if subscription else 1}),
            "quote": quote,
            "plan_form": plan_form,
            "plan_quote": plan_quote,
            "start_form": start_form if needs_start else None,
            "trial_available": trial_available,
            "trial_days": settings.BILLING_TRIAL_DAYS,
            "orders": orders,
            "invoices": billing_selectors.invoice_list(account=account),
            "credit_notes": billing_selectors.credit_note_list(account=account),
            "details": billing_selectors.billing_details_get(account=account),
            # Apps above billing (refunds) add their sections; billing never imports them.
            **{
                key: value
                for extension in PAGE_EXTENSIONS
                for key, value in extension(account=account, orders=orders).items()
            },
            "payments": billing_selectors.payment_list(account=account),
            "addons": billing_selectors.addon_list(account=account),
            "quota_addons": billing_selectors.quota_addons_active(account=account),
            "on_premise": on_premise,
            "credits": billing_selectors.credits_left(account=account),
            "usage_summary": billing_selectors.usage_summary(account=account, today=today),
            "can_buy": not account.reseller_id,
            "gateway": settings.BILLING_GATEWAY,
            "bank_details": settings.VENDOR_BANK_DETAILS,
            "page_rows": billing_selectors.PAGE_ROWS,
        },
        status=status,
    )


@member_view(need="billing", on_licence_screen=True)
def billing_overview(request):
    return _page(request)


@member_view(need="billing", on_licence_screen=True)
def seat_change(request):
    """Two steps: preview the charge or credit, then confirm it."""
    if request.method != "POST":
        return redirect("settings_billing")
    account = request.portal.account
    subscription = billing_selectors.subscription_current(account=account)
    form = SeatChangeForm(request.POST)
    if subscription is None:
        messages.error(request, "This account has no plan to change.")
        return redirect("settings_billing")
    if not form.is_valid():
        return _page(request, seat_form=form, status=400)
    quantity = form.cleaned_data["quantity"]
    try:
        if request.POST.get("action") != "confirm":
            quote = services.subscription_seat_quote(
                subscription=subscription,
                quantity=quantity,
                today=billing_selectors.account_today(account),
            )
            return _page(request, seat_form=form, quote=quote)
        subscription, quote, order = services.subscription_change_seats(
            actor=request.user,
            subscription=subscription,
            quantity=quantity,
            expected_amount=form.expected_amount(subscription.price.currency),
        )
    except PortalError as exc:
        form.add_error("quantity", exc.message)
        return _page(request, seat_form=form, status=400)
    if quote.kind == "credit":
        messages.success(
            request,
            f"You now have {subscription.quantity} seats; {quote.amount} is on your account "
            "as credit.",
        )
    elif order is not None and order.status == order.Status.PAID:
        messages.success(
            request,
            f"{quote.delta} seat(s) added: you have {subscription.quantity} seats now "
            f"(order {order.number}, {quote.amount}).",
        )
    elif order is not None:
        messages.warning(
            request,
            f"Order {order.number} awaits payment of {order.amount_due:.2f} {order.currency}: "
            "the seats are added the moment it is paid.",
        )
    return redirect("settings_billing")


@member_view(need="billing", on_licence_screen=True)
def order_cancel(request, order_id: int):
    if request.method != "POST":
        return redirect("settings_billing")
    order = billing_selectors.order_get(account=request.portal.account, order_id=order_id)
    try:
        order = services.order_cancel(actor=request.user, order=order)
    except PortalError as exc:
        messages.error(request, exc.message)
    else:
        returned = (
            f"; {order.credit_applied:.2f} {order.currency} of credit is back on your account"
            if order.credit_applied
            else ""
        )
        messages.success(request, f"Order {order.number} is cancelled{returned}.")
    return redirect("settings_billing")


@member_view(need="billing", on_licence_screen=True)
def order_pay(request, order_id: int):
    """Charge an order again after its payment failed."""
    if request.method != "POST":
        return redirect("settings_billing")
    order = billing_selectors.order_get(account=request.portal.account, order_id=order_id)
    try:
        services.payment_retry(actor=request.user, order=order)
    except PortalError as exc:
        messages.error(request, exc.message)
    else:
        order.refresh_from_db()
        if order.status == order.Status.PAID:
            messages.success(request, f"{order.number} is paid; what it bought is yours now.")
        else:
            messages.warning(
                request, f"{order.number}: your card is being charged; this page shows the result."
            )
    return redirect("settings_billing")


@member_view(need="billing", on_licence_screen=True)
def subscription_cancel(request):
    """Cancel at the end of the period, or take the cancellation back."""
    if request.method != "POST":
        return redirect("settings_billing")
    subscription = billing_selectors.subscription_current(account=request.portal.account)
    if subscription is None:
        messages.error(request, "This account has no plan.")
        return redirect("settings_billing")
    cancel = request.POST.get("cancel") == "1"
    try:
        subscription = services.subscription_set_cancel_at_period_end(
            actor=request.user, subscription=subscription, cancel=cancel
        )
    except PortalError as exc:
        messages.error(request, exc.message)
    else:
        if cancel:
            messages.success(
                request,
                f"Your plan ends on {subscription.current_period_end:%d %B %Y}: you keep access "
                "until then, and nothing more is charged. Unused time is not refunded (1CRM "
                "terms).",
            )
        else:
            messages.success(request, "Your plan will renew as before.")
    return redirect("settings_billing")


@member_view(need="billing", on_licence_screen=True)
def plan_change(request):
    """Preview an upgrade or downgrade, then confirm it."""
    if request.method != "POST":
        return redirect("settings_billing")
    account = request.portal.account
    subscription = billing_selectors.subscription_current(account=account)
    if subscription is None:
        messages.error(request, "This account has no plan to change.")
        return redirect("settings_billing")
    form = PlanChangeForm(
        request.POST, choices=billing_selectors.plan_choices(subscription=subscription)
    )
    if not form.is_valid():
        return _page(request, plan_form=form, status=400)
    price = form.cleaned_data["price"]
    try:
        if request.POST.get("action") != "confirm":
            quote = services.subscription_plan_quote(
                subscription=subscription,
                price=price,
                today=billing_selectors.account_today(account),
            )
            return _page(request, plan_form=form, plan_quote=quote)
        subscription, quote, order = services.subscription_change_plan(
            actor=request.user,
            subscription=subscription,
            price=price,
            expected_amount=form.expected_amount(price.currency),
        )
    except PortalError as exc:
        form.add_error("price", exc.message)
        return _page(request, plan_form=form, status=400)
    if quote.kind == "downgrade":
        messages.success(
            request,
            f"You move to {quote.new} on {quote.period_end:%d %B %Y}, when this period ends.",
        )
    elif order is not None and order.status == order.Status.PAID:
        messages.success(request, f"You are on {quote.new} now (order {order.number}).")
    elif order is not None:
        messages.warning(
            request,
            f"Order {order.number} awaits payment of {order.amount_due:.2f} {order.currency}: "
            f"you move to {quote.new} the moment it is paid.",
        )
    else:
        messages.success(request, f"You stay on {quote.new}; the planned move is cancelled.")
    return redirect("settings_billing")


@member_view(need="billing", on_licence_screen=True)
def subscription_start(request):
    if request.method != "POST":
        return redirect("settings_billing")
    account = request.portal.account
    form = StartPlanForm(request.POST, choices=billing_selectors.start_choices(account=account))
    if not form.is_valid():
        return _page(request, start_form=form, status=400)
    try:
        subscription, order = services.subscription_start(
            actor=request.user,
            account=account,
            price=form.cleaned_data["price"],
            quantity=form.cleaned_data["quantity"],
            trial=form.cleaned_data["trial"],
        )
    except PortalError as exc:
        form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        return _page(request, start_form=form, status=400)
    if order is None:
        messages.success(
            request,
            f"Your trial of {subscription.price.product.name} runs until "
            f"{subscription.last_day:%d %B %Y}; the first charge comes the day after.",
        )
    elif order.status == order.Status.PAID:
        messages.success(request, f"{subscription.price.product.name} is yours now.")
    else:
        messages.warning(
            request,
            f"Order {order.number} awaits payment of {order.amount_due:.2f} {order.currency}: "
            "the plan starts the moment it is paid.",
        )
    return redirect("settings_billing")
