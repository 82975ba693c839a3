"""Facts for the policy engine from orders, and its decisions for the portal's pages.

The engine (refunds.policy) is pure; this module reads the database and the clock.
"""

import hashlib
import logging
import secrets
from datetime import date, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.http import Http404
from django.utils import timezone

from accounts.errors import NotAllowed, PortalError
from accounts.models import CURRENCIES, Account
from accounts.selectors import acts_on_billing
from accounts.services import audit_record, clean_text, require_staff
from accounts.state_machine import machine_for
from accounts.uploads import files_check, safe_filename
from billing.locks import lock_account
from billing.models import LineRefund, Order, OrderLine, Payment, Product
from billing.money import Money
from billing.selectors import account_today, line_refunds
from billing.services import (
    idempotency_key,
    payment_refund_at_gateway,
    refund_hold_units,
    refund_record,
    refund_take_back,
)
from core import outbox
from core.calendar import vendor_holidays

from . import deadlines, wording
from .models import RefundEvidence, RefundLine, RefundMessage, RefundPayout, RefundRequest
from .policy import (
    PRESETS,
    REASONS,
    AccountFacts,
    Context,
    Decision,
    LineFacts,
    RequestFacts,
    decide,
)
from .wording import Outlook

# What "delivered" means per kind (acelle §3.1): the key downloaded or activated, the
# plugin key activated, the service delivered and accepted.
DELIVERED = {
    Product.Kind.PERPETUAL_LICENSE: {OrderLine.Delivery.DOWNLOADED},
    Product.Kind.PLUGIN: {OrderLine.Delivery.DOWNLOADED},
    Product.Kind.SERVICE: {OrderLine.Delivery.ACCEPTED},
}


def active_preset():
    return PRESETS[settings.REFUND_POLICY]


def marketplace_preset():
    """Apps sold on the marketplace follow its own policy (onecloud §4), whatever the
    vendor's preset for its own products."""
    return PRESETS[settings.MARKETPLACE_REFUND_POLICY]


def preset_for(kind: str):
    return marketplace_preset() if kind in Product.APP_KINDS else active_preset()


def context_for(account: Account) -> Context:
    return Context(
        currency=account.currency, digits=CURRENCIES[account.currency], holidays=vendor_holidays()
    )


def account_facts(account: Account) -> AccountFacts:
    return AccountFacts(
        status="suspended_tos" if account.status == Account.Status.SUSPENDED_TOS else "active",
        partner=account.reseller.name if account.reseller_id else None,
    )


def line_facts(line: OrderLine, account: Account) -> LineFacts:
    """The facts of a paid line, its dates in the account's local calendar."""
    paid_at = line.order.paid_at or line.order.created_at
    period = (line.period_start, line.period_end) if line.period_start and line.period_end else None
    trial_end = None
    if line.kind == Product.Kind.APP_SUBSCRIPTION and line.subscription_id:
        trial = line.subscription.trial_end
        # onecloud §4: the cycle that begins when a free trial ends is not refunded.
        if trial is not None and line.period_start is not None and line.period_start >= trial:
            trial_end = trial
    return LineFacts(
        id=str(line.pk),
        kind=line.kind,
        amount=line.amount,
        paid=timezone.localtime(paid_at, account.tzinfo).date(),
        first_purchase=line.first_purchase,
        period=period,
        units=line.units,
        units_used=line.units_used,
        activated=line.activated_at is not None and line.kind == Product.Kind.QUOTA_ADDON,
        delivered=line.delivery in DELIVERED.get(line.kind, ()),
        used=line.units_used > 0,
        refunded=line.refunded,
        trial_end=trial_end,
        refund_days=line.refund_days,
        description=line.description,
        order=str(line.order_id),
    )


def whole_orders(lines: list[OrderLine]) -> list[OrderLine]:
    """A full-order request is about every line of its orders (acelle §4), not only the
    ones picked: the lines left out must count too."""
    extra = (
        OrderLine.objects.filter(order_id__in={line.order_id for line in lines}, amount__gt=0)
        .exclude(pk__in=[line.pk for line in lines])
        .select_related("order")
        .order_by("order_id", "pk")
    )
    return [*lines, *extra]


def decisions_for(
    *,
    account: Account,
    lines: list[OrderLine],
    on: date,
    reason: str = "no_longer_needed",
    event: date | None = None,
    full_order: bool = False,
    preset=None,
) -> dict[int, Decision]:
    """What a request received on `on` (a local date) would get, per line; a full-order
    request also decides the order's other lines."""
    if full_order:
        lines = whole_orders(lines)
    request = RequestFacts(date=on, reason=reason, event=event, full_order=full_order)
    groups: dict = {}
    for line in lines:
        # A preset named (the simulator) decides every line; else each line its own.
        chosen = preset or preset_for(line.kind)
        groups.setdefault(chosen.id, (chosen, []))[1].append(line_facts(line, account))
    decided = {}
    for chosen, facts in groups.values():
        decided |= decide(
            chosen,
            account=account_facts(account),
            lines=facts,
            request=request,
            ctx=context_for(account),
        )
    return {int(key): decision for key, decision in decided.items()}


def outlook(*, account: Account, orders) -> Outlook:
    """For the Billing page: each paid line, as if the customer asked today."""
    lines = [
        line
        for order in orders
        if order.status == Order.Status.PAID
        for line in order.lines.all()
        if line.amount > 0
    ]
    if not lines:
        return Outlook(currency=account.currency)
    return Outlook(
        decisions_for(account=account, lines=lines, on=account_today(account)),
        currency=account.currency,
    )


def app_refund_terms(kind: str, *, refund_days: int | None = None, trial_days: int = 0) -> str:
    """An app plan's refund terms in plain words, from the marketplace's preset."""
    return wording.plain(
        marketplace_preset().terms(kind, refund_days=refund_days, trial_days=trial_days)
    )


def lines_held(line_ids) -> set[int]:
    return set(lines_in_open_requests(line_ids))


def lines_in_open_requests(line_ids) -> dict[int, RefundRequest]:
    """The open request each purchase is in, if any: it is being refunded (or asked
    about) there, and cannot be asked about again until that request ends."""
    rows = (
        RefundLine.objects.filter(
            order_line_id__in=list(line_ids), request__state__in=RefundRequest.OPEN_STATES
        )
        .select_related("request")
        .order_by("request_id")
    )
    return {row.order_line_id: row.request for row in rows}


def billing_page_sections(*, account: Account, orders) -> dict:
    """The Billing page's refund parts: the outlook of each paid purchase, the account's
    requests, the purchases in an open request, and the paid orders that can still be
    asked about (a purchase with something left, in no open request)."""
    requests = list(
        RefundRequest.objects.filter(account=account)
        .select_related("order")
        .order_by("-received_at", "-id")[:25]
    )
    lines = [line for order in orders for line in order.lines.all()]
    busy = lines_in_open_requests(line.pk for line in lines)
    askable = {
        line.order_id
        for line in lines
        if line.amount > 0 and line.refundable_left > 0 and line.pk not in busy
    }
    return {
        "refund_outlook": outlook(account=account, orders=orders),
        "refund_requests": requests,
        "refund_busy": busy,
        "refund_askable": {order.pk for order in orders if order.refundable} & askable,
    }


# === refund requests ======================================================================

logger = logging.getLogger(__name__)
State = RefundRequest.State

# One table of the moves a request can make (acelle §5's process).
TRANSITIONS = {
    State.RECEIVED: {State.ACKNOWLEDGED, State.IN_REVIEW, State.DECIDED, State.WITHDRAWN},
    State.ACKNOWLEDGED: {State.IN_REVIEW, State.DECIDED, State.WITHDRAWN},
    State.IN_REVIEW: {State.NEEDS_INFO, State.DECIDED, State.WITHDRAWN},
    State.NEEDS_INFO: {State.IN_REVIEW, State.WITHDRAWN},
    State.DECIDED: {State.PAYING, State.CLOSED},
    State.PAYING: {State.PAID, State.CREDITED},
    State.PAID: {State.CLOSED},
    State.CREDITED: {State.CLOSED},
    State.CLOSED: set(),
    State.WITHDRAWN: set(),
}
REQUEST = machine_for(RefundRequest, field="state", transitions=TRANSITIONS, noun="refund request")
# A payout: paid, or failed and then tried again (or paid another way).
PAYOUT = machine_for(
    RefundPayout,
    field="status",
    noun="payout",
    transitions={
        RefundPayout.Status.PENDING: {RefundPayout.Status.SUCCEEDED, RefundPayout.Status.FAILED},
        RefundPayout.Status.FAILED: {RefundPayout.Status.PENDING},
        RefundPayout.Status.SUCCEEDED: set(),
    },
)
BEFORE_DECISION = (State.RECEIVED, State.ACKNOWLEDGED, State.IN_REVIEW, State.NEEDS_INFO)


def _lock_request(request: RefundRequest | int) -> RefundRequest:
    """The account first (billing.locks' order: its money changes one at a time), then
    the request."""
    pk = request if isinstance(request, int) else request.pk
    lock_account(RefundRequest.objects.values_list("account_id", flat=True).get(pk=pk))
    return RefundRequest.objects.select_for_update(no_key=True).get(pk=pk)


def refunded_before(line: OrderLine, rows: list[LineRefund] | None = None, tz=None) -> str:
    """In the customer's words, what came back on a purchase and by which requests."""
    rows = rows if rows is not None else line_refunds(line_ids=[line.pk]).get(line.pk, [])
    return "; ".join(row.describe(tz) for row in rows)


def line_left(order_line: OrderLine, *, request: RefundRequest) -> tuple[Decimal, str]:
    """What staff may still approve on a purchase, read afresh (the caller holds the
    account's lock): what was paid, less what came back on it, less what other requests'
    payouts are still paying back on it. With it, in words, why it is less."""
    line = OrderLine.objects.get(pk=order_line.pk)
    reserved, by = Decimal(0), []
    payouts = (
        RefundPayout.objects.filter(
            request__order_id=line.order_id,
            status__in=[RefundPayout.Status.PENDING, RefundPayout.Status.FAILED],
        )
        .exclude(request_id=request.pk)
        .select_related("request")
    )
    for payout in payouts:
        part = Decimal(payout.allocation.get(str(line.pk), "0"))
        if part > 0:
            reserved += part
            by.append(payout.request.number)
    why = []
    if line.refunded:
        why.append(refunded_before(line, tz=request.account.tzinfo))
    if reserved:
        why.append(f"{Money(reserved, line.order.currency)} is being paid back by {', '.join(by)}")
    return max(line.amount - line.refunded - reserved, Decimal(0)), "; ".join(why)


def decisions_now(request: RefundRequest) -> dict[int, Decision]:
    """The policy's answer to the request with today's facts: the window is still
    counted from the day it arrived, but what was used or refunded since counts."""
    lines = list(
        OrderLine.objects.filter(pk__in=request.lines.values("order_line")).select_related("order")
    )
    return decisions_for(
        account=request.account,
        lines=lines,
        on=timezone.localtime(request.received_at, request.account.tzinfo).date(),
        reason=request.reason,
        event=request.event_on,
        full_order=request.full_order,
    )


def line_ceiling(
    line: RefundLine, *, request: RefundRequest, now_decisions: dict | None = None
) -> tuple[Decimal, str]:
    """The most staff may approve on a line, read again under the account's lock: the
    policy's ceiling when the request arrived, its answer with today's facts (credits
    used since, money that came back since), and what is left of the purchase."""
    left, why = line_left(line.order_line, request=request)
    decision = (now_decisions or decisions_now(request))[line.order_line_id]
    allowed = decision.amount if decision.outcome in ("refund", "review") else Decimal(0)
    reasons = [why] if why and left < line.engine_amount else []
    if allowed < min(line.engine_amount, left):
        reasons.append(
            f"the policy now allows {Money(allowed, request.currency)}: {decision.explanation}"
        )
    return min(line.engine_amount, allowed, left), "; ".join(reasons)


def _next_deadline(request: RefundRequest):
    if request.state == State.RECEIVED:
        return min(request.ack_due_at, request.decide_due_at)
    if request.state in (State.ACKNOWLEDGED, State.IN_REVIEW):
        return request.decide_due_at
    if request.state in (State.DECIDED, State.PAYING):
        return request.payout_due_at
    return None


def _sweep_at(request: RefundRequest):
    """When the deadline sweep next has something to do: a business day before each
    deadline of the state not yet reminded of, the first instant past the deadline for a
    breach not yet recorded (a breach is `now > due`). None when every reminder and breach
    is done (or the clock is stopped)."""
    times = []
    for name, field, states in DEADLINE_FIELDS:
        due = getattr(request, field)
        if due is None or request.state not in states or name in request.breached:
            continue
        if name in request.reminded:
            times.append(due + timedelta(microseconds=1))
        else:
            times.append(deadlines.reminder_from(due))
    return min(times, default=None)


def _transition(request: RefundRequest, new: str, *, actor, now, note: str = "") -> None:
    """The one way a request changes state; the caller holds its lock."""

    def prepare(request: RefundRequest, old: str) -> list[str]:
        stamp = {
            State.ACKNOWLEDGED: "acknowledged_at",
            State.DECIDED: "decided_at",
            State.PAID: "paid_at",
            State.CREDITED: "paid_at",
            State.CLOSED: "closed_at",
            State.WITHDRAWN: "closed_at",
        }.get(new)
        fields = ["next_deadline", "sweep_at"]
        if stamp and getattr(request, stamp) is None:
            setattr(request, stamp, now)
            fields.append(stamp)
        if new == State.IN_REVIEW and request.acknowledged_at is None:
            request.acknowledged_at = now  # reviewing it acknowledges it
            fields.append("acknowledged_at")
        if new == State.NEEDS_INFO:
            request.paused_at = now
            fields.append("paused_at")
        if old == State.NEEDS_INFO and request.paused_at:
            # The clock stopped while the customer was asked: move the deadlines on.
            days = deadlines.business_days_between(request.paused_at, now)
            request.ack_due_at = deadlines.shifted(request.ack_due_at, days)
            request.decide_due_at = deadlines.shifted(request.decide_due_at, days)
            request.paused_at = None
            fields += ["ack_due_at", "decide_due_at", "paused_at"]
        request.next_deadline = _next_deadline(request)
        request.sweep_at = _sweep_at(request)
        return fields

    if request.state == new:  # not a move: the table refuses it
        REQUEST.check(request, new)
    REQUEST.move(
        request,
        new,
        actor=actor,
        action="refund.state_changed",
        account=request.account,
        changes={"note": note} if note else None,
        prepare=prepare,
    )
    _state_mail_on_commit(request, new)


def _state_mail_on_commit(request: RefundRequest, state: str) -> None:
    """One mail per step the customer sees: the moves one change makes (decided, paying
    out, credited) send one mail, about the last state, not one mail each."""
    from core.models import OutboxMessage

    message = getattr(request, "_state_mail", None)
    if message is not None and (
        OutboxMessage.objects.filter(pk=message.pk, sent_at__isnull=True).update(
            args=[request.pk, state]
        )
    ):
        # Still waiting for this transaction's commit: the publish hook sends these args.
        message.args = [request.pk, state]
        return
    request._state_mail = _mail_on_commit(request, state)
    transaction.on_commit(lambda: request.__dict__.pop("_state_mail", None))


def _mail_on_commit(request: RefundRequest, event: str):
    from .tasks import send_refund_email

    return outbox.enqueue(send_refund_email, request.pk, event)


def _require_customer(actor, account: Account) -> None:
    if not acts_on_billing(user=actor, account=account):
        raise NotAllowed("Only owners and billing admins can ask for refunds.")


def evidence_check(files) -> list[tuple]:
    return files_check(files, field="evidence")


def _save_evidence(request: RefundRequest, checked, *, actor, now) -> None:
    from django.core.files.base import ContentFile

    for _upload, name, content_type, content in checked:
        RefundEvidence.objects.create(
            request=request,
            file=ContentFile(content, name=f"{secrets.token_hex(8)}-{safe_filename(name)}"),
            name=name,
            content_type=content_type,
            size=len(content),
            sha256=hashlib.sha256(content).hexdigest(),
            uploaded_by=actor if actor is not None and actor.pk else None,
            created_at=now,
        )


def refund_request_submit(
    *,
    actor,
    account: Account,
    line_ids,
    reason: str,
    payout_method: str,
    text: str = "",
    event_on: date | None = None,
    full_order: bool = False,
    channel: str = RefundRequest.Channel.WEB,
    evidence=(),
    now=None,
) -> RefundRequest:
    """A customer asks for a refund of purchases of one order (web, API or email).

    The engine's decision for each line is recorded as it arrives; lines whose outcome
    is `refund` are approved at once when REFUND_AUTO_APPROVE is on.
    """
    now = now or timezone.now()
    if reason not in REASONS:
        raise PortalError(f"“{reason}” is not a reason we know.", field="reason")
    if payout_method not in RefundRequest.Payout.values:
        raise PortalError("Choose the original payment method or account credit.", field="payout")
    text = (text or "").strip()
    if len(text) > 5000:
        raise PortalError("Tell us in at most 5,000 characters.", field="text")
    ids = list(dict.fromkeys(int(pk) for pk in line_ids or []))
    if not ids:
        raise PortalError("Choose at least one purchase.", field="lines")
    checked = evidence_check(evidence)
    with transaction.atomic():
        account = lock_account(account)
        _require_customer(actor, account)
        lines = list(
            OrderLine.objects.filter(order__account=account, pk__in=ids).select_related("order")
        )
        if len(lines) != len(ids):
            raise Http404("No such purchase.")
        orders = {line.order_id for line in lines}
        if len(orders) > 1:
            raise PortalError("Ask about the purchases of one order at a time.", field="lines")
        order = lines[0].order
        if order.status != Order.Status.PAID:
            raise PortalError(
                f"{order.number} is not paid: there is nothing to refund.", field="lines"
            )
        for line in lines:
            if line.amount > 0 and line.refundable_left <= 0:
                raise PortalError(
                    f"“{line.description}” has nothing left to refund: "
                    f"{refunded_before(line, tz=account.tzinfo)}.",
                    field="lines",
                )
        if full_order:
            lines = whole_orders(lines)
        taken = (
            RefundLine.objects.filter(
                order_line__in=lines, request__state__in=RefundRequest.OPEN_STATES
            )
            .values_list("order_line__description", "request__number")
            .first()
        )
        if taken is not None:
            raise PortalError(f"“{taken[0]}” is already in {taken[1]}.", field="lines")
        today = account_today(account, now)
        decisions = decisions_for(
            account=account,
            lines=lines,
            on=today,
            reason=reason,
            event=event_on,
            full_order=full_order,
        )
        request = RefundRequest.objects.create(
            number=f"tmp-{secrets.token_hex(6)}",
            account=account,
            order=order,
            requested_by=actor if actor is not None and actor.pk else None,
            channel=channel,
            preset=(
                marketplace_preset()
                if all(line.kind in Product.APP_KINDS for line in lines)
                else active_preset()
            ).id,
            reason=reason,
            event_on=event_on,
            text=text,
            full_order=full_order,
            payout_method=payout_method,
            currency=order.currency,
            received_at=now,
            created_at=now,
            ack_due_at=deadlines.due_after(now, deadlines.ACKNOWLEDGE_DAYS),
            decide_due_at=deadlines.due_after(now, deadlines.DECIDE_DAYS),
        )
        request.number = f"RR-{now:%Y}-{request.pk:06d}"
        request.next_deadline = _next_deadline(request)
        request.sweep_at = _sweep_at(request)
        request.save(update_fields=["number", "next_deadline", "sweep_at"])
        auto = settings.REFUND_AUTO_APPROVE
        for line in lines:
            decision = decisions[line.pk]
            approve = auto and decision.outcome == "refund" and decision.amount > 0
            RefundLine.objects.create(
                request=request,
                order_line=line,
                engine_outcome=decision.outcome,
                engine_amount=decision.amount
                if decision.outcome in ("refund", "review")
                else Decimal(0),
                clause=decision.clause,
                last_day=decision.last_day,
                explanation=decision.explanation,
                decision=RefundLine.Decision.APPROVED if approve else RefundLine.Decision.PENDING,
                approved_amount=decision.amount if approve else None,
            )
        _save_evidence(request, checked, actor=actor, now=now)
        audit_record(
            actor=actor,
            action="refund.received",
            target=request,
            account=account,
            changes={
                "lines": [line.pk for line in lines],
                "reason": reason,
                "channel": channel,
                "payout": payout_method,
                "evidence": len(checked),
            },
        )
        _mail_on_commit(request, "received")
        if auto and not request.lines.exclude(decision=RefundLine.Decision.APPROVED).exists():
            _decide(
                request, actor=None, now=now, note="approved automatically (REFUND_AUTO_APPROVE)"
            )
    return request


def refund_request_acknowledge(*, actor, request: RefundRequest, now=None) -> RefundRequest:
    now = now or timezone.now()
    with transaction.atomic():
        require_staff(actor, "refunds.change_refundrequest")
        request = _lock_request(request)
        if request.state == State.RECEIVED:
            _transition(request, State.ACKNOWLEDGED, actor=actor, now=now)
        if request.holder_id is None:
            request.holder = actor
            request.save(update_fields=["holder"])
    return request


def refund_request_take(*, actor, request: RefundRequest, now=None) -> RefundRequest:
    """A reviewer holds the request (and starts the review)."""
    now = now or timezone.now()
    with transaction.atomic():
        require_staff(actor, "refunds.change_refundrequest")
        request = _lock_request(request)
        old = request.holder_id
        request.holder = actor
        request.save(update_fields=["holder"])
        audit_record(
            actor=actor,
            action="refund.held",
            target=request,
            account=request.account,
            changes={"holder": [old, actor.pk]},
        )
        if request.state in (State.RECEIVED, State.ACKNOWLEDGED):
            _transition(request, State.IN_REVIEW, actor=actor, now=now)
    return request


def refund_request_ask_info(
    *, actor, request: RefundRequest, question: str, now=None
) -> RefundRequest:
    """Staff need something from the customer: the clock stops until they answer."""
    now = now or timezone.now()
    question = (question or "").strip()
    if not question:
        raise PortalError("Write what you need from the customer.", field="question")
    with transaction.atomic():
        require_staff(actor, "refunds.change_refundrequest")
        request = _lock_request(request)
        if request.state in (State.RECEIVED, State.ACKNOWLEDGED):
            _transition(request, State.IN_REVIEW, actor=actor, now=now)
        RefundMessage.objects.create(
            request=request, author=actor, from_staff=True, body=question, created_at=now
        )
        _transition(request, State.NEEDS_INFO, actor=actor, now=now, note=question[:200])
    return request


def refund_request_message(
    *, actor, request: RefundRequest, body: str, evidence=(), now=None
) -> RefundMessage:
    """The customer writes (or adds evidence); an answer to needs_info restarts the clock."""
    now = now or timezone.now()
    body = (body or "").strip()
    checked = evidence_check(evidence)
    if not body and not checked:
        raise PortalError("Write a message or attach a file.", field="body")
    if len(body) > 5000:
        raise PortalError("Write at most 5,000 characters.", field="body")
    with transaction.atomic():
        request = _lock_request(request)
        _require_customer(actor, request.account)
        if not request.is_open:
            raise PortalError(
                f"{request.number} is {request.get_state_display().lower()}.", field="body"
            )
        message = RefundMessage.objects.create(
            request=request, author=actor, body=body or "(evidence attached)", created_at=now
        )
        _save_evidence(request, checked, actor=actor, now=now)
        audit_record(
            actor=actor,
            action="refund.message",
            target=request,
            account=request.account,
            changes={"evidence": len(checked)},
        )
        if request.state == State.NEEDS_INFO:
            _transition(request, State.IN_REVIEW, actor=actor, now=now, note="customer answered")
    return message


def refund_request_withdraw(*, actor, request: RefundRequest, now=None) -> RefundRequest:
    now = now or timezone.now()
    with transaction.atomic():
        request = _lock_request(request)
        _require_customer(actor, request.account)
        if request.state not in BEFORE_DECISION:
            raise PortalError(
                f"{request.number} is {request.get_state_display().lower()}: only a request "
                "not yet decided can be withdrawn.",
                field="state",
            )
        _transition(request, State.WITHDRAWN, actor=actor, now=now)
    return request


def refund_line_decide(
    *, actor, line: RefundLine, approve: bool, amount=None, reason: str = "", now=None
) -> RefundLine:
    """Staff approve an amount up to the line's ceiling, or deny it with a reason."""
    now = now or timezone.now()
    with transaction.atomic():
        require_staff(actor, "refunds.change_refundrequest")
        request = _lock_request(line.request_id)
        line = RefundLine.objects.select_for_update(no_key=True).get(pk=line.pk)
        if request.state not in BEFORE_DECISION or request.state == State.NEEDS_INFO:
            raise PortalError(
                f"{request.number} is {request.get_state_display().lower()}: its lines "
                "cannot be decided now.",
                field="decision",
            )
        if approve:
            try:
                value = Money(
                    amount if amount is not None else line.engine_amount, request.currency
                )
            except Exception as exc:
                raise PortalError("Give the amount to approve.", field="amount") from exc
            value = value.rounded()
            if value.amount <= 0:
                raise PortalError("Approve more than zero, or deny the line.", field="amount")
            if value.amount > line.engine_amount:
                raise PortalError(
                    f"At most {line.engine_amount:.2f} {request.currency} can be approved for "
                    f"this line ({line.clause}).",
                    field="amount",
                )
            ceiling, why = line_ceiling(line, request=request)
            if value.amount > ceiling:
                raise PortalError(
                    f"At most {Money(ceiling, request.currency)} can be approved for this "
                    f"line: {why}.",
                    field="amount",
                )
            line.decision, line.approved_amount, line.deny_reason = "approved", value.amount, ""
        else:
            reason = clean_text(reason, field="reason", label="the reason", max_length=500)
            line.decision, line.approved_amount, line.deny_reason = "denied", None, reason
        line.decided_by = actor
        line.save(update_fields=["decision", "approved_amount", "deny_reason", "decided_by"])
        if request.holder_id is None:
            request.holder = actor  # who decides holds it
            request.save(update_fields=["holder"])
        audit_record(
            actor=actor,
            action="refund.line_decided",
            target=request,
            account=request.account,
            changes={
                "line": line.pk,
                "decision": line.decision,
                "amount": str(line.approved_amount or 0),
                "reason": line.deny_reason,
            },
        )
        if request.state in (State.RECEIVED, State.ACKNOWLEDGED):
            _transition(request, State.IN_REVIEW, actor=actor, now=now)
    return line


def refund_request_decide(*, actor, request: RefundRequest, now=None) -> RefundRequest:
    """Every line decided: the request is approved, partly approved or denied, and the
    payout starts (acelle §5)."""
    now = now or timezone.now()
    with transaction.atomic():
        require_staff(actor, "refunds.change_refundrequest")
        request = _lock_request(request)
        if request.lines.filter(decision=RefundLine.Decision.PENDING).exists():
            raise PortalError("Decide every line first.", field="decision")
        _decide(request, actor=actor, now=now)
    return request


def _decide(request: RefundRequest, *, actor, now, note: str = "") -> None:
    REQUEST.check(request, State.DECIDED)
    lines = list(request.lines.select_related("order_line__order"))
    now_decisions = decisions_now(request)
    for line in lines:
        if line.approved_amount:
            # Read again under the account's lock: another request for the same purchase
            # may have been paid since this line was approved, or credits used.
            ceiling, why = line_ceiling(line, request=request, now_decisions=now_decisions)
            if line.approved_amount > ceiling:
                raise PortalError(
                    f"“{line.order_line.description}” has {Money(ceiling, request.currency)} "
                    f"left to refund ({why}): approve at most that, or deny it.",
                    field="decision",
                )
    approved = sum((line.approved_amount or Decimal(0) for line in lines), Decimal(0))
    if approved == 0:
        request.outcome = RefundRequest.Outcome.DENIED
    elif all(
        line.decision == "approved" and line.approved_amount == line.engine_amount for line in lines
    ):
        request.outcome = RefundRequest.Outcome.APPROVED
    else:
        request.outcome = RefundRequest.Outcome.PARTLY_APPROVED
    request.approved_total = approved
    request.payout_from = deadlines.business_day_after(now, deadlines.PAYOUT_FROM_DAYS)
    request.payout_due_at = deadlines.due_after(now, deadlines.PAYOUT_DAYS) if approved else None
    request.save(update_fields=["outcome", "approved_total", "payout_from", "payout_due_at"])
    _transition(request, State.DECIDED, actor=actor, now=now, note=note)
    if approved:
        _transition(request, State.PAYING, actor=actor, now=now)
        _start_payouts(request, actor=actor, now=now)
    else:
        _transition(request, State.CLOSED, actor=actor, now=now)


# --- payouts ---------------------------------------------------------------------------


def _payout_key(request: RefundRequest, method: str, attempt: int) -> str:
    return idempotency_key(request.order, f"refund-{request.pk}-{method}-{attempt}")


def allocate(approved: list[tuple[int, Decimal]], first: Decimal) -> tuple[dict, dict]:
    """Split the approved amounts per line into the part `first` pays (the original
    payment, lines in order) and the rest (credit): {line id: "amount"} each."""
    head, rest, left = {}, {}, first
    for line_id, amount in approved:
        take = min(amount, max(left, Decimal(0)))
        left -= take
        if take > 0:
            head[str(line_id)] = str(take)
        if amount - take > 0:
            rest[str(line_id)] = str(amount - take)
    return head, rest


def _payment_room(payment: Payment, *, request: RefundRequest) -> Decimal:
    """What can still go back on a payment for `request`: what it paid, less what came
    back, less what other requests' payouts on it are still paying."""
    in_flight = sum(
        (
            payout.amount
            for payout in RefundPayout.objects.filter(
                payment=payment,
                status__in=[RefundPayout.Status.PENDING, RefundPayout.Status.FAILED],
            ).exclude(request=request)
        ),
        Decimal(0),
    )
    return max(payment.amount - payment.refunded - in_flight, Decimal(0))


def _original_payment(request: RefundRequest) -> tuple[Payment | None, Decimal]:
    """The order's succeeded payment, and what can still go back on it."""
    payment = Payment.objects.filter(order=request.order, status=Payment.Status.SUCCEEDED).first()
    if payment is None:
        return None, Decimal(0)
    return payment, _payment_room(payment, request=request)


def _start_payouts(request: RefundRequest, *, actor, now) -> None:
    """Split the approved total between the original payment and credit, and move the
    credit at once; the card part goes through the gateway after commit."""
    from .tasks import refund_payout_run

    approved = [
        (line.order_line_id, line.approved_amount)
        for line in request.lines.filter(decision=RefundLine.Decision.APPROVED).order_by("pk")
        if line.approved_amount
    ]
    # Agreed: the credits it pays back leave use now, not when the money arrives.
    refund_hold_units(
        actor=actor, account=request.account, amounts=dict(approved), reference=request.number
    )
    total = sum((amount for _, amount in approved), Decimal(0))
    card, payment = Decimal(0), None
    if request.payout_method == RefundRequest.Payout.ORIGINAL:
        # Never more than what remains refundable of the charge; the rest of the
        # order was paid with credit and goes back as credit.
        payment, remaining = _original_payment(request)
        card = min(total, remaining)
    to_card, to_credit = allocate(approved, card)
    if card > 0:
        method = RefundPayout.Method.STRIPE if payment.gateway == "stripe" else "manual"
        payout = RefundPayout.objects.create(
            request=request,
            payment=payment,
            method=method,
            amount=card,
            currency=request.currency,
            idempotency_key=_payout_key(request, method, 1),
            allocation=to_card,
            created_at=now,
        )
        if method == RefundPayout.Method.STRIPE:
            outbox.enqueue(refund_payout_run, payout.pk)
    if total - card > 0:
        payout = RefundPayout.objects.create(
            request=request,
            method=RefundPayout.Method.CREDIT,
            amount=total - card,
            currency=request.currency,
            idempotency_key=_payout_key(request, "credit", 1),
            allocation=to_credit,
            created_at=now,
        )
        _payout_done(payout, reference=request.number, actor=actor, now=now)


def _payout_done(payout: RefundPayout, *, reference: str, actor, now) -> None:
    """A payout succeeded (caller holds the account's and the request's locks): billing
    records the money on the lines it paid back, and the request completes when every
    payout has."""
    request = payout.request
    credit = payout.method == RefundPayout.Method.CREDIT
    refund_record(
        actor=actor,
        account=request.account,
        method=LineRefund.Method.CREDIT if credit else LineRefund.Method.ORIGINAL,
        amounts={int(pk): Decimal(amount) for pk, amount in payout.allocation.items()},
        payment=None if credit else payout.payment,
        reference=request.number,
        key=f"refund-payout-{payout.pk}",
        now=now,
    )
    payout.reference = reference[:120]
    payout.error = ""
    payout.completed_at = now
    PAYOUT.move(
        payout,
        RefundPayout.Status.SUCCEEDED,
        actor=actor,
        action="refund.paid_out",
        account=request.account,
        changes={"method": payout.method, "amount": str(payout.amount), "reference": reference},
        also=["reference", "error", "completed_at"],
    )
    if request.payouts.exclude(status=RefundPayout.Status.SUCCEEDED).exists():
        return
    methods = set(request.payouts.values_list("method", flat=True))
    _after_processed(request, actor=actor, now=now)
    _transition(
        request,
        State.CREDITED if methods == {RefundPayout.Method.CREDIT} else State.PAID,
        actor=actor,
        now=now,
    )


def _after_processed(request: RefundRequest, *, actor, now) -> None:
    """The refund is processed: billing takes back what it paid for (acelle §2, §3: units,
    quota, keys; §5: the plan ends), and the SaaS account is deactivated when its plan
    was refunded (acelle §5)."""
    from accounts.services import account_deactivate

    approved = request.lines.filter(decision=RefundLine.Decision.APPROVED)
    taken = refund_take_back(
        actor=actor,
        account=request.account,
        line_ids=list(approved.values_list("order_line_id", flat=True)),
        reference=request.number,
        now=now,
    )
    if taken.plan_ended:
        account_deactivate(account=request.account, reason=f"refund {request.number}", actor=actor)


def _lock_payout(payout: RefundPayout | int) -> RefundPayout:
    """The account, the request, then the payout: billing.locks' order."""
    pk = payout if isinstance(payout, int) else payout.pk
    request = _lock_request(RefundPayout.objects.values_list("request_id", flat=True).get(pk=pk))
    payout = RefundPayout.objects.select_for_update(no_key=True).get(pk=pk)
    payout.request = request
    return payout


def _payout_room(payout: RefundPayout) -> str:
    """Why the payout no longer fits what is left to refund (the caller holds the
    account's lock), or "": each purchase it pays back, and the payment it goes to."""
    for pk, amount in payout.allocation.items():
        line = OrderLine.objects.select_related("order").get(pk=int(pk))
        left, why = line_left(line, request=payout.request)
        if Decimal(amount) > left:
            return (
                f"“{line.description}” has {Money(left, payout.currency)} left to refund "
                f"({why}): this payout would pay back {Money(Decimal(amount), payout.currency)}."
            )
    if payout.payment_id:
        # A request has one payout to the payment: the others in flight are other requests'.
        room = _payment_room(Payment.objects.get(pk=payout.payment_id), request=payout.request)
        if payout.amount > room:
            return (
                f"The payment of {payout.request.order.number} has "
                f"{Money(room, payout.currency)} left to give back."
            )
    return ""


def refund_payout_run(*, payout_id: int, now=None) -> RefundPayout:
    """Ask the gateway for a card refund; no transaction is held during the call, and the
    key was stored before it. Safe to run twice: a refund the gateway answered "pending"
    for is not asked again (its notification settles it), and a payout that no longer
    fits what is left to refund fails here, before the gateway is called."""
    with transaction.atomic():
        payout = _lock_payout(payout_id)
        if payout.status != RefundPayout.Status.PENDING or payout.method != "stripe":
            return payout
        if payout.reference:
            return payout  # the gateway has it in hand: asking again could refund twice
        problem = _payout_room(payout)
        if problem:
            _payout_fail(payout, message=problem, actor=None)
            return payout
        payout.attempts += 1
        payout.save(update_fields=["attempts"])
        payment = payout.payment
    result = payment_refund_at_gateway(
        payment=payment,
        amount=Money(payout.amount, payout.currency),
        idempotency_key=payout.idempotency_key,
        # Stripe echoes the key back in its webhooks: which attempt a failure is about.
        metadata={
            "refund_payout_id": str(payout.pk),
            "refund_request": payout.request.number,
            "refund_key": payout.idempotency_key,
        },
    )
    if result.status == "succeeded":
        return refund_payout_succeeded(
            payout=payout,
            reference=result.reference,
            idempotency_key=payout.idempotency_key,
            now=now,
        )
    if result.status == "failed":
        return refund_payout_failed(
            payout=payout, message=result.message, idempotency_key=payout.idempotency_key, now=now
        )
    if result.reference:
        RefundPayout.objects.filter(pk=payout.pk, reference="").update(reference=result.reference)
    return payout


def refund_payout_succeeded(
    *, payout: RefundPayout, reference: str, idempotency_key: str = "", actor=None, now=None
):
    """The gateway gave the money back. A success told for an earlier attempt's key is
    the same money only if that attempt is the one in flight: else it is logged, and
    staff see it."""
    now = now or timezone.now()
    with transaction.atomic():
        payout = _lock_payout(payout)
        if payout.status == RefundPayout.Status.SUCCEEDED:
            return payout  # a replayed webhook or a second run: nothing moves twice
        if idempotency_key and idempotency_key != payout.idempotency_key:
            logger.error(
                "Refund %s: a success for key %s, but payout %s is at key %s",
                reference,
                idempotency_key,
                payout.pk,
                payout.idempotency_key,
            )
            audit_record(
                actor=None,
                action="refund.payout_success_for_another_attempt",
                target=payout.request,
                account=payout.request.account,
                changes={"payout": payout.pk, "reference": reference, "key": idempotency_key},
            )
            return payout
        _payout_done(payout, reference=reference, actor=actor, now=now)
    return payout


def _payout_fail(payout: RefundPayout, *, message: str, actor) -> None:
    payout.error = (message or "The gateway refused the refund.")[:300]
    PAYOUT.move(
        payout,
        RefundPayout.Status.FAILED,
        actor=actor,
        action="refund.payout_failed",
        account=payout.request.account,
        changes={"payout": payout.pk, "error": payout.error},
        also=["error"],
    )


def refund_payout_failed(
    *, payout: RefundPayout, message: str, idempotency_key: str = "", now=None
) -> RefundPayout:
    """The gateway refused: the request stays paying, with the error shown and a retry.

    A failure of an earlier attempt (its key), told late after staff retried, is old
    news: it neither fails the attempt in flight nor opens the way to another refund.
    A failure of a refund that had succeeded (Stripe: the bank returned it) leaves the
    record as it is, and the billing leads are told to settle it by hand."""
    with transaction.atomic():
        payout = _lock_payout(payout)
        request = payout.request
        if idempotency_key and idempotency_key != payout.idempotency_key:
            return payout
        if payout.status == RefundPayout.Status.SUCCEEDED:
            if idempotency_key and "came back failed" not in payout.error:
                payout.error = f"The refund came back failed after it succeeded: {message}"[:300]
                payout.save(update_fields=["error"])
                audit_record(
                    actor=None,
                    action="refund.payout_reversed",
                    target=request,
                    account=request.account,
                    changes={"payout": payout.pk, "error": message[:200]},
                )
                _mail_on_commit(request, "reversed:pay out")
            return payout
        if payout.status != RefundPayout.Status.PENDING:
            return payout
        _payout_fail(payout, message=message, actor=None)
    return payout


def refund_payout_retry(*, actor, payout: RefundPayout, now=None) -> RefundPayout:
    """Try a failed card refund again, with a new key (the old one is Stripe's answer)."""
    from .tasks import refund_payout_run

    with transaction.atomic():
        require_staff(actor, "refunds.change_refundrequest")
        payout = _lock_payout(payout)
        if payout.status != RefundPayout.Status.FAILED:
            raise PortalError("Only a failed payout can be retried.", field="payout")
        if payout.method != RefundPayout.Method.STRIPE:
            raise PortalError("Only a card refund is tried again.", field="payout")
        request = payout.request
        payout.idempotency_key = _payout_key(request, payout.method, payout.attempts + 1)
        payout.reference = ""  # the failed refund's id is not this attempt's
        PAYOUT.move(
            payout,
            RefundPayout.Status.PENDING,
            actor=actor,
            action="refund.payout_retried",
            account=request.account,
            changes={"payout": payout.pk, "attempt": payout.attempts + 1},
            also=["idempotency_key", "reference"],
        )
        outbox.enqueue(refund_payout_run, payout.pk)
    return payout


def refund_payout_pay_another_way(
    *, actor, payout: RefundPayout, method: str, now=None
) -> RefundPayout:
    """A card refund the gateway refuses for good (the charge too old, the card closed)
    is paid another way: by bank transfer, which staff then record, or as account
    credit, at once. It pays back the same purchases."""
    now = now or timezone.now()
    if method not in (RefundPayout.Method.MANUAL, RefundPayout.Method.CREDIT):
        raise PortalError("Choose a bank transfer or account credit.", field="method")
    with transaction.atomic():
        require_staff(actor, "refunds.change_refundrequest")
        payout = _lock_payout(payout)
        request = payout.request
        if payout.method != RefundPayout.Method.STRIPE or payout.status != "failed":
            raise PortalError("Only a card refund that failed is paid another way.", field="payout")
        if request.payouts.filter(method=method).exclude(pk=payout.pk).exists():
            raise PortalError(
                f"{request.number} has a payout {RefundPayout.Method(method).label.lower()} "
                "already: choose the other way.",
                field="method",
            )
        old = payout.method
        payout.method = method
        payout.payment = None if method == RefundPayout.Method.CREDIT else payout.payment
        payout.idempotency_key = _payout_key(request, method, payout.attempts + 1)
        payout.reference = ""
        PAYOUT.move(
            payout,
            RefundPayout.Status.PENDING,
            actor=actor,
            action="refund.payout_switched",
            account=request.account,
            changes={"payout": payout.pk, "method": [old, method], "error": payout.error},
            also=["method", "payment", "idempotency_key", "reference"],
        )
        if method == RefundPayout.Method.CREDIT:
            _payout_done(payout, reference=request.number, actor=actor, now=now)
    return payout


def refund_payout_record_manual(
    *, actor, payout: RefundPayout, reference: str, now=None
) -> RefundPayout:
    """Staff paid the refund outside the portal (bank transfer) and record its reference."""
    now = now or timezone.now()
    reference = clean_text(reference, field="reference", label="the reference", max_length=120)
    with transaction.atomic():
        require_staff(actor, "refunds.change_refundrequest")
        payout = _lock_payout(payout)
        if payout.method != RefundPayout.Method.MANUAL:
            raise PortalError("Only a manual payout is recorded by hand.", field="payout")
        if payout.status == RefundPayout.Status.SUCCEEDED:
            return payout
        _payout_done(payout, reference=reference, actor=actor, now=now)
    return payout


def refund_request_close(*, actor, request: RefundRequest, now=None) -> RefundRequest:
    now = now or timezone.now()
    with transaction.atomic():
        require_staff(actor, "refunds.change_refundrequest")
        request = _lock_request(request)
        _transition(request, State.CLOSED, actor=actor, now=now)
    return request


# --- the deadline sweep ------------------------------------------------------------------

DEADLINE_FIELDS = (
    ("acknowledge", "ack_due_at", (State.RECEIVED,)),
    ("decide", "decide_due_at", (State.RECEIVED, State.ACKNOWLEDGED, State.IN_REVIEW)),
    ("pay out", "payout_due_at", (State.DECIDED, State.PAYING)),
)


def refund_deadlines_due(*, now):
    """Open requests with a reminder or a breach to act on now: an index range scan of
    refund_open_sweep_at. Those already reminded and breached are not in it."""
    return RefundRequest.objects.filter(
        state__in=RefundRequest.OPEN_STATES, sweep_at__lte=now
    ).order_by("sweep_at")


def refund_deadlines_sweep(*, now=None) -> dict:
    """Remind the holder a business day before a deadline, escalate a breach to the
    billing leads, and record each reminder and breach once."""
    now = now or timezone.now()
    counts = {"reminded": 0, "breached": 0}
    for pk in list(refund_deadlines_due(now=now).values_list("pk", flat=True)):
        with transaction.atomic():
            request = _lock_request(pk)
            fields = []
            for name, field, states in DEADLINE_FIELDS:
                due = getattr(request, field)
                if due is None or request.state not in states:
                    continue
                if now > due and name not in request.breached:
                    request.breached = [*request.breached, name]
                    counts["breached"] += 1
                    fields.append("breached")
                    audit_record(
                        actor=None,
                        action="refund.deadline_breached",
                        target=request,
                        account=request.account,
                        changes={"deadline": name, "due": due.isoformat()},
                    )
                    _mail_on_commit(request, f"breach:{name}")
                elif (
                    now <= due
                    and now >= deadlines.reminder_from(due)
                    and name not in request.reminded
                ):
                    request.reminded = [*request.reminded, name]
                    counts["reminded"] += 1
                    fields.append("reminded")
                    _mail_on_commit(request, f"reminder:{name}")
            sweep_at = _sweep_at(request)
            if sweep_at != request.sweep_at:
                request.sweep_at = sweep_at
                fields.append("sweep_at")
            if fields:
                request.save(update_fields=list(dict.fromkeys(fields)))
    return counts
