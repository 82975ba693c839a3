"""The customer's refund pages: ask (Account Settings > Billing, 1Cloud's route), and
follow a request: its status, deadlines, messages and decisions."""

from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils import timezone

from accounts.errors import PortalError
from accounts.views import member_view
from billing import selectors as billing_selectors
from billing.models import Order

from . import selectors, services
from .forms import MessageForm, RefundRequestForm


@member_view(need="billing", on_licence_screen=True)
def refund_request_new(request, order_id: int):
    """Choose purchases of one order; see what the policy says; send."""
    account = request.portal.account
    order = billing_selectors.order_get(account=account, order_id=order_id)
    if order.status != Order.Status.PAID:
        messages.error(request, f"{order.number} is not paid: there is nothing to refund.")
        return redirect("settings_billing")
    purchases = [line for line in order.lines.all() if line.amount > 0]
    refunds = billing_selectors.line_refunds(line_ids=[line.pk for line in purchases])
    busy = services.lines_in_open_requests(line.pk for line in purchases)
    # A purchase with nothing left to refund, or in an open request, is shown, not offered.
    lines = [line for line in purchases if line.refundable_left > 0 and line.pk not in busy]
    form = RefundRequestForm(request.POST or None, request.FILES or None, lines=lines)
    preview, status, stops = None, 200, []
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        chosen = [line for line in lines if line.pk in data["lines"]]
        try:
            if request.POST.get("action") == "send":
                refund = services.refund_request_submit(
                    actor=request.user,
                    account=account,
                    line_ids=data["lines"],
                    reason=data["reason"],
                    payout_method=data["payout_method"],
                    text=data["text"],
                    event_on=data["event_on"],
                    full_order=data["full_order"],
                    evidence=data["evidence"],
                )
                messages.success(
                    request,
                    f"Refund request {refund.number} sent. We acknowledge it by "
                    f"{timezone.localtime(refund.ack_due_at):%d %B %Y} and decide by "
                    f"{timezone.localtime(refund.decide_due_at):%d %B %Y}.",
                )
                return redirect("refund_request_detail", number=refund.number)
            decisions = services.decisions_for(
                account=account,
                lines=chosen,
                on=services.account_today(account),
                reason=data["reason"],
                event=data["event_on"],
                full_order=data["full_order"],
            )
            preview = (
                [(line, decisions[line.pk]) for line in services.whole_orders(chosen)]
                if (data["full_order"])
                else [(line, decisions[line.pk]) for line in chosen]
            )
            stops = billing_selectors.entitlements_lost(
                account, without_lines=[line.pk for line, _ in preview]
            )
        except PortalError as exc:
            form.add_error(exc.field if exc.field in form.fields else None, exc.message)
            status = 400
    elif request.method == "POST":
        status = 400
    outlook = services.outlook(account=account, orders=[order])
    return render(
        request,
        "refunds/new.html",
        {
            "tab": "billing",
            "account": account,
            "order": order,
            "rows": [
                (line, outlook.get(line.pk), refunds.get(line.pk, []), busy.get(line.pk))
                for line in purchases
            ],
            "form": form,
            "preview": preview,
            "stops": stops,
        },
        status=status,
    )


@member_view(need="billing", on_licence_screen=True)
def refund_request_detail(request, number: str):
    account = request.portal.account
    refund = selectors.refund_request_get(account=account, number=number)
    form = MessageForm(request.POST or None, request.FILES or None)
    status = 200
    if request.method == "POST":
        try:
            if request.POST.get("action") == "withdraw":
                services.refund_request_withdraw(actor=request.user, request=refund)
                messages.success(request, f"{refund.number} is withdrawn.")
                return redirect("refund_request_detail", number=refund.number)
            if form.is_valid():
                services.refund_request_message(
                    actor=request.user,
                    request=refund,
                    body=form.cleaned_data["body"],
                    evidence=form.cleaned_data["evidence"],
                )
                messages.success(request, "Your message was sent.")
                return redirect("refund_request_detail", number=refund.number)
            status = 400
        except PortalError as exc:
            form.add_error(None, exc.message)
            status = 400
    return render(
        request,
        "refunds/detail.html",
        {"tab": "billing", "account": account, "refund": refund, "form": form},
        status=status,
    )
