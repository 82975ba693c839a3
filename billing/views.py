"""The Billing tab of Account Settings: an overview, and a sub-page per concern (plan and
seats, add-ons and apps, invoices, credits and usage, refunds). Changes go through a
preview page that shows every amount the order charges, then a confirmation."""

from dataclasses import dataclass

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.text import capfirst

from accounts import formatting, selectors
from accounts.errors import PortalError
from accounts.views import member_view

from . import selectors as billing_selectors
from . import services
from .forms import PlanChangeForm, SeatChangeForm, StartPlanForm
from .hooks import PAGE_EXTENSIONS
from .views_purchases import confirm_words

# The sub-navigation: (url name, label, the page's key).
SUBPAGES = [
    ("settings_billing", "Overview", "overview"),
    ("billing_plan", "Plan & seats", "plan"),
    ("billing_addons", "Add-ons & apps", "addons"),
    ("billing_invoices", "Invoices", "invoices"),
    ("billing_credits", "Credits & usage", "credits"),
    ("billing_refunds", "Refunds", "refunds"),
]


def _render(request, template: str, page: str, context: dict, *, status: int = 200):
    account = request.portal.account
    return render(
        request,
        template,
        {
            "tab": "billing",
            "billing_page": page,
            "subpages": SUBPAGES,
            "account": account,
            "gateway": settings.BILLING_GATEWAY,
            **context,
        },
        status=status,
    )


class _Page:
    """One page of a list, newest first, with links to the newer and older pages but no
    page count: it reads one row more than it shows to know whether older ones follow,
    so that its cost is the page's, not the list's (a COUNT of 20,000 payments is most
    of the page's time). Only a page past the end counts, to show the last one."""

    def __init__(self, rows, number: int, per_page: int):
        self.number = number
        found = list(rows[(number - 1) * per_page : number * per_page + 1])
        self.has_next = len(found) > per_page
        self.object_list = found[:per_page]
        self.has_previous = number > 1

    def __iter__(self):
        return iter(self.object_list)

    def __len__(self):
        return len(self.object_list)

    def __bool__(self):
        return bool(self.object_list)

    @property
    def has_other_pages(self) -> bool:
        return self.has_previous or self.has_next

    def next_page_number(self) -> int:
        return self.number + 1

    def previous_page_number(self) -> int:
        return self.number - 1


def _paginate(request, rows, param: str = "page") -> _Page:
    per_page = billing_selectors.PAGE_ROWS
    try:
        number = max(int(request.GET.get(param, 1)), 1)
    except (TypeError, ValueError):
        number = 1  # ?page=abc: the first page, as Paginator.get_page does
    page = _Page(rows, number, per_page)
    if not page and number > 1:  # past the end: the last page
        page = _Page(rows, Paginator(rows, per_page).num_pages, per_page)
    return page


def _extensions(account, orders) -> dict:
    # Apps above billing (refunds) add their sections; billing never imports them.
    return {
        key: value
        for extension in PAGE_EXTENSIONS
        for key, value in extension(account=account, orders=orders).items()
    }


def _is_on_premise(on_premise) -> bool:
    return on_premise is not None and on_premise.is_on_premise


@member_view(need="billing", on_licence_screen=True)
def billing_overview(request):
    account = request.portal.account
    today = billing_selectors.account_today(account)
    subscription = billing_selectors.subscription_current(account=account)
    extensions = _extensions(account, [])
    return _render(
        request,
        "billing/overview.html",
        "overview",
        {
            "subscription": subscription,
            "licensed_users": billing_selectors.licensed_users(account),
            "next_charge": billing_selectors.next_charge(account=account, today=today),
            "balance": billing_selectors.ledger_balance(account=account, currency=account.currency),
            "unpaid": list(
                billing_selectors.order_unpaid_list(account=account)[: billing_selectors.PAGE_ROWS]
            ),
            "open_requests": [
                r for r in extensions.get("refund_requests", []) if getattr(r, "is_open", False)
            ],
        },
    )


def _plan_page(request, *, seat_form=None, plan_form=None, start_form=None, status=200):
    account = request.portal.account
    now = timezone.now()
    today = billing_selectors.account_today(account, now)
    subscription = billing_selectors.subscription_current(account=account)
    usage = selectors.seat_usage(account=account, now=now)
    on_premise = billing_selectors.on_premise(account=account, today=today)
    on_prem = _is_on_premise(on_premise)
    trial_available = subscription is None
    # An on-premise account's seats are its licensed users: no cloud plan is offered.
    needs_start = not on_prem and (
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
            initial={"price": subscription.price},
        )
    return _render(
        request,
        "billing/plan.html",
        "plan",
        {
            "subscription": subscription,
            "usage": usage,
            "seat_holders": selectors.seat_holder_list(account=account),
            "billing_email": settings.VENDOR_BILLING_EMAIL,
            "seat_form": seat_form
            or SeatChangeForm(initial={"quantity": subscription.quantity if subscription else 1}),
            "plan_form": plan_form,
            "start_form": start_form if needs_start else None,
            "trial_available": trial_available,
            "trial_days": settings.BILLING_TRIAL_DAYS,
            "on_premise": on_premise if on_prem else None,
        },
        status=status,
    )


@member_view(need="billing", on_licence_screen=True)
def billing_plan(request):
    return _plan_page(request)


@member_view(need="billing", on_licence_screen=True)
def billing_addons(request):
    account = request.portal.account
    today = billing_selectors.account_today(account)
    on_premise = billing_selectors.on_premise(account=account, today=today)
    return _render(
        request,
        "billing/addons.html",
        "addons",
        {
            "addons": _paginate(request, billing_selectors.addon_list(account=account)),
            "quota_addons": billing_selectors.quota_addons_active(account=account),
            "apps": billing_selectors.app_subscription_list(account=account),
            # A cloud account's plugin keys; an on-premise account's are on Plan & seats.
            "plugin_licences": (
                on_premise.licences if on_premise and not on_premise.is_on_premise else []
            ),
            "can_buy": not account.reseller_id,
        },
    )


@dataclass(frozen=True)
class PaymentRow:
    """A payment as its table row shows it, formatted once here rather than per lookup in
    the template."""

    when: str
    reference: str
    amount: str
    refunded: str  # "" when nothing came back
    gateway: str
    status: str
    covered: str  # the order and what its lines bought
    credit: str  # the order's credit used, "" for none


def _payment_rows(payments) -> list[PaymentRow]:
    rows = []
    for p in payments:
        order = p.order
        if order.status == order.Status.CANCELLED and p.status == p.Status.FAILED:
            status = "Not taken: the order was cancelled"
        else:
            status = p.get_status_display() + (
                f": {p.failure_message}" if p.failure_message else ""
            )
        rows.append(
            PaymentRow(
                when=formatting.day(p.succeeded_at or p.created_at),
                reference=p.reference,
                amount=formatting.money(p.amount, p.currency),
                refunded=formatting.money(p.refunded, p.currency) if p.refunded else "",
                gateway=capfirst(p.gateway),
                status=status,
                covered=f"{order.number}: "
                + "; ".join(line.description for line in order.lines.all()),
                credit=(
                    formatting.money(order.credit_applied, p.currency)
                    if order.credit_applied
                    else ""
                ),
            )
        )
    return rows


@dataclass(frozen=True)
class InvoiceRow:
    number: str
    issued: str
    order: str
    total: str


@member_view(need="billing", on_licence_screen=True)
def billing_invoices(request):
    account = request.portal.account
    orders = _paginate(request, billing_selectors.order_list(account=account, limit=None), "orders")
    invoices = _paginate(
        request, billing_selectors.invoice_list(account=account, limit=None), "invoices"
    )
    payments = _paginate(
        request, billing_selectors.payment_list(account=account, limit=None), "payments"
    )
    return _render(
        request,
        "billing/invoices.html",
        "invoices",
        {
            "details": billing_selectors.billing_details_get(account=account),
            "invoices": invoices,
            "invoice_rows": [
                InvoiceRow(
                    number=i.number,
                    issued=formatting.day(i.issued_at),
                    order=i.order.number,
                    total=formatting.money(i.total, i.currency),
                )
                for i in invoices
            ],
            "credit_notes": billing_selectors.credit_note_list(account=account),
            "orders": orders,
            "payments": payments,
            "payment_rows": _payment_rows(payments),
            "bank_details": settings.VENDOR_BANK_DETAILS,
            **_extensions(account, list(orders.object_list)),
        },
    )


@member_view(need="billing", on_licence_screen=True)
def billing_credits(request):
    account = request.portal.account
    today = billing_selectors.account_today(account)
    return _render(
        request,
        "billing/credits.html",
        "credits",
        {
            "ledger": billing_selectors.ledger_view(account=account, currency=account.currency),
            "credits": billing_selectors.credits_left(account=account),
            "usage_summary": billing_selectors.usage_summary(account=account, today=today),
        },
    )


@member_view(need="billing", on_licence_screen=True)
def billing_refunds(request):
    account = request.portal.account
    orders = _paginate(
        request, billing_selectors.order_list(account=account, limit=None, payments=False)
    )
    return _render(
        request,
        "billing/refunds.html",
        "refunds",
        {"orders": orders, **_extensions(account, list(orders.object_list))},
    )


@member_view(need="billing", on_licence_screen=True)
def order_detail(request, order_id: int):
    """One order: what it charges, and how to pay what is due (bank details with the
    manual gateway, the card with Stripe)."""
    account = request.portal.account
    order = billing_selectors.order_get(account=account, order_id=order_id)
    last_payment = order.payments.order_by("-created_at", "-id").first()
    return _render(
        request,
        "billing/order.html",
        "invoices",
        {
            "order": order,
            "lines": list(order.lines.order_by("id")),
            "last_payment": last_payment,
            # The payment asked for says how the order is paid; the gateway, before one is.
            "by_transfer": (
                last_payment.gateway == "manual"
                if last_payment is not None
                else settings.BILLING_GATEWAY == "manual"
            ),
            "bank_details": settings.VENDOR_BANK_DETAILS,
            "billing_email": settings.VENDOR_BILLING_EMAIL,
        },
    )


def _placed(request, order, *, paid: str, waiting: str):
    """Where a confirmed order goes: the Billing page when paid, else the order's page,
    which says how to pay it."""
    if order.status == order.Status.PAID:
        messages.success(request, paid)
        return redirect("billing_plan")
    messages.warning(request, waiting)
    return redirect("billing_order", order_id=order.pk)


def _preview(request, *, testid, title, explain, action, hidden, totals, confirm, stops=()):
    return _render(
        request,
        "billing/preview.html",
        "plan",
        {
            "testid": testid,
            "title": title,
            "explain": explain,
            "stops": stops,
            "action": action,
            "hidden": hidden,
            "totals": totals,
            "confirm": confirm,
            "back": reverse("billing_plan"),
        },
    )


@member_view(need="billing", on_licence_screen=True)
def seat_change(request):
    """Two steps: preview the charge or credit, then confirm it."""
    if request.method != "POST":
        return redirect("billing_plan")
    account = request.portal.account
    subscription = billing_selectors.subscription_current(account=account)
    form = SeatChangeForm(request.POST)
    if subscription is None:
        messages.error(request, "This account has no plan to change.")
        return redirect("billing_plan")
    if not form.is_valid():
        return _plan_page(request, seat_form=form, status=400)
    quantity = form.cleaned_data["quantity"]
    try:
        if request.POST.get("action") != "confirm":
            quote, totals = services.subscription_seat_preview(
                subscription=subscription,
                quantity=quantity,
                today=billing_selectors.account_today(account),
            )
            if quote.kind == "none":
                form.add_error("quantity", f"You have {quantity} seats already.")
                return _plan_page(request, seat_form=form, status=400)
            return _preview(
                request,
                testid="seat-quote",
                title=f"{quote.current} → {quote.new} seats",
                explain=quote.explain(),
                action=reverse("billing_seat_change"),
                hidden={"quantity": quote.new, "expected": quote.amount.amount},
                totals=totals,
                confirm=(
                    confirm_words(totals)
                    if totals
                    else f"Confirm: {quote.current} → {quote.new} seats"
                ),
            )
        subscription, quote, order = services.subscription_change_seats(
            actor=request.user,
            subscription=subscription,
            quantity=quantity,
            expected_amount=form.expected_amount(subscription.price.currency),
        )
    except PortalError as exc:
        form.add_error("quantity", exc.message)
        return _plan_page(request, seat_form=form, status=400)
    if quote.kind == "credit":
        messages.success(
            request,
            f"You now have {subscription.quantity} seats; "
            f"{formatting.money(quote.total.amount, quote.total.currency)} is on your account "
            "as credit.",
        )
    elif order is not None:
        return _placed(
            request,
            order,
            paid=(
                f"{quote.delta} seat(s) added: you have {subscription.quantity} seats now "
                f"(order {order.number})."
            ),
            waiting=(f"Order {order.number} is placed: the seats are added the moment it is paid."),
        )
    else:
        messages.success(request, f"You now have {subscription.quantity} seats.")
    return redirect("billing_plan")


@member_view(need="billing", on_licence_screen=True)
def order_cancel(request, order_id: int):
    """A page saying what cancelling the order does, then the cancellation."""
    order = billing_selectors.order_get(account=request.portal.account, order_id=order_id)
    if request.method != "POST":
        return _render(
            request,
            "billing/order_cancel.html",
            "invoices",
            {"order": order, "lines": list(order.lines.order_by("id"))},
        )
    try:
        order = services.order_cancel(actor=request.user, order=order)
    except PortalError as exc:
        messages.error(request, exc.message)
    else:
        returned = (
            f"; {formatting.money(order.credit_applied, order.currency)} of credit is back on "
            "your account"
            if order.credit_applied
            else ""
        )
        messages.success(request, f"Order {order.number} is cancelled{returned}.")
    return redirect("billing_invoices")


@member_view(need="billing", on_licence_screen=True)
def order_pay(request, order_id: int):
    """Charge an order again after its payment failed."""
    if request.method != "POST":
        return redirect("billing_order", order_id=order_id)
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
    return redirect("billing_order", order_id=order.pk)


def _access_ends(subscription) -> str:
    return formatting.day(subscription.last_day)


@member_view(need="billing", on_licence_screen=True)
def subscription_cancel(request):
    """Cancel at the end of the period (after a page saying what happens and when), or
    take the cancellation back."""
    subscription = billing_selectors.subscription_current(account=request.portal.account)
    if subscription is None:
        messages.error(request, "This account has no plan.")
        return redirect("billing_plan")
    if request.method != "POST":
        return _render(request, "billing/plan_cancel.html", "plan", {"subscription": subscription})
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
                f"Your plan is cancelled: you keep access through {_access_ends(subscription)}, "
                "and nothing more is charged. Unused time is not refunded.",
            )
        else:
            messages.success(request, "Your plan will renew as before.")
    return redirect("billing_plan")


@member_view(need="billing", on_licence_screen=True)
def plan_change(request):
    """Preview an upgrade or downgrade, then confirm it."""
    if request.method != "POST":
        return redirect("billing_plan")
    account = request.portal.account
    subscription = billing_selectors.subscription_current(account=account)
    if subscription is None:
        messages.error(request, "This account has no plan to change.")
        return redirect("billing_plan")
    form = PlanChangeForm(
        request.POST, choices=billing_selectors.plan_choices(subscription=subscription)
    )
    if not form.is_valid():
        return _plan_page(request, plan_form=form, status=400)
    price = form.cleaned_data["price"]
    try:
        if request.POST.get("action") != "confirm":
            quote, totals = services.subscription_plan_preview(
                subscription=subscription,
                price=price,
                today=billing_selectors.account_today(account),
            )
            if quote.kind == "none":
                form.add_error("price", f"You are on {quote.new} already.")
                return _plan_page(request, plan_form=form, status=400)
            return _preview(
                request,
                testid="plan-quote",
                title=f"{quote.current} → {quote.new}",
                explain=quote.explain(),
                stops=quote.stops,
                action=reverse("billing_plan_change"),
                hidden={"price": price.pk, "expected": quote.amount.amount},
                totals=totals,
                confirm=(
                    confirm_words(totals)
                    if totals
                    else f"Confirm: stay on {quote.new}"
                    if quote.kind == "stay"
                    else f"Confirm: move to {quote.new} on {formatting.day(quote.period_end)}"
                ),
            )
        subscription, quote, order = services.subscription_change_plan(
            actor=request.user,
            subscription=subscription,
            price=price,
            expected_amount=form.expected_amount(price.currency),
        )
    except PortalError as exc:
        form.add_error("price", exc.message)
        return _plan_page(request, plan_form=form, status=400)
    if quote.kind == "downgrade":
        messages.success(
            request,
            f"You move to {quote.new} on {formatting.day(quote.period_end)}, when this period "
            "ends.",
        )
    elif order is not None:
        return _placed(
            request,
            order,
            paid=f"You are on {quote.new} now (order {order.number}).",
            waiting=f"Order {order.number} is placed: you move to {quote.new} the moment it is paid.",
        )
    else:
        messages.success(request, f"You stay on {quote.new}; the planned move is cancelled.")
    return redirect("billing_plan")


@member_view(need="billing", on_licence_screen=True)
def subscription_start(request):
    if request.method != "POST":
        return redirect("billing_plan")
    account = request.portal.account
    form = StartPlanForm(request.POST, choices=billing_selectors.start_choices(account=account))
    if not form.is_valid():
        return _plan_page(request, start_form=form, status=400)
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
        return _plan_page(request, start_form=form, status=400)
    if order is None:
        messages.success(
            request,
            f"Your trial of {subscription.price.product.name} runs through "
            f"{formatting.day(subscription.last_day)}; the first charge comes the day after.",
        )
        return redirect("billing_plan")
    return _placed(
        request,
        order,
        paid=f"{subscription.price.product.name} is yours now.",
        waiting=f"Order {order.number} is placed: the plan starts the moment it is paid.",
    )
