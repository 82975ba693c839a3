"""The customer's refund pages: ask (Account Settings > Billing, 1Cloud's route), and
follow a request: its status, deadlines, messages and decisions."""

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render

from accounts import formatting
from accounts.errors import PortalError
from accounts.views import member_view
from billing import selectors as billing_selectors
from billing.models import Order

from . import holding, selectors, services, wording
from .forms import MessageForm, RefundRequestForm


@member_view(need="billing", on_licence_screen=True)
def refund_request_new(request, order_id: int):
    """Choose purchases of one order; see what the policy says; send. Files attached are
    kept (refunds.holding) across the preview and a refused Send."""
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
    action = request.POST.get("action") if request.method == "POST" else None
    preview, status, stops = None, 200, []
    if request.method == "POST":
        valid = form.is_valid()
        _hold_uploads(request, order, form)
        if not valid:
            status = 400
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        chosen = [line for line in lines if line.pk in data["lines"]]
        try:
            decisions = services.decisions_for(
                account=account,
                lines=chosen,
                on=services.account_today(account),
                reason=data["reason"],
                event=data["event_on"],
                full_order=data["full_order"],
            )
            preview = [
                (line, decisions[line.pk])
                for line in (services.whole_orders(chosen) if data["full_order"] else chosen)
            ]
            stops = billing_selectors.entitlements_lost(
                account, without_lines=[line.pk for line, _ in preview]
            )
            if action == "send":
                refund = services.refund_request_submit(
                    actor=request.user,
                    account=account,
                    line_ids=data["lines"],
                    reason=data["reason"],
                    payout_method=data["payout_method"],
                    text=data["text"],
                    event_on=data["event_on"],
                    full_order=data["full_order"],
                    evidence=holding.held_files(request.session, order.pk),
                )
                holding.release(request.session, order.pk)
                messages.success(
                    request,
                    f"Refund request {refund.number} sent. We acknowledge it by "
                    f"{formatting.day(refund.ack_due_at)} and decide by "
                    f"{formatting.day(refund.decide_due_at)}.",
                )
                return redirect("refund_request_detail", number=refund.number)
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
            # After a refused Send, Send stays: the customer corrects a field and sends.
            "can_send": preview is not None or action == "send",
            "kept": holding.held_names(request.session, order.pk),
        },
        status=status,
    )


def _hold_uploads(request, order, form) -> None:
    """Check the files just attached and keep them for the order's request; a refused
    file is named beside the field and nothing of that upload is kept."""
    uploads = form.cleaned_data.get("evidence") or []
    if not uploads:
        return
    try:
        checked = services.evidence_check(
            [*holding.held_files(request.session, order.pk), *uploads]
        )
    except PortalError as exc:
        form.add_error("evidence", exc.message)
        return
    holding.hold(request.session, order.pk, checked[-len(uploads) :])


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


def policy_page(request, name: str):
    """The vendor's written policy, an anchor per section (id="s1-3" for §1.3): the page
    the customer pages' clause links open. Public, like the vendor's own site."""
    policy = wording.policy_get(name)
    if policy is None:
        raise Http404("No such policy.")
    return render(request, "refunds/policy.html", {"policy": policy})
