"""Every state change of support (1CRM terms of service): who may ask, the yearly quota,
extra incidents billed through billing, incidents and their service-level deadlines."""

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from accounts import formatting
from accounts.errors import NotAllowed, PortalError
from accounts.models import Account, Membership
from accounts.services import audit_record, clean_text, require_staff
from accounts.state_machine import machine_for
from accounts.uploads import files_check, safe_filename
from billing import selectors as billing_selectors
from billing.locks import lock_account
from billing.models import Licence, Order, OrderLine, Product, Subscription
from billing.periods import add_years
from billing.selectors import account_today
from billing.services import support_incident_order
from core import outbox

from . import deadlines
from .models import Incident, IncidentAttachment, IncidentMessage

State = Incident.State

# The moves an incident may make (accounts.state_machine): each is audited as
# incident.state_changed, and any other is refused naming both states.
INCIDENT = machine_for(
    Incident,
    field="state",
    noun="incident",
    transitions={
        State.AWAITING_PAYMENT: {State.OPEN, State.CLOSED},  # the extra paid, or withdrawn
        State.OPEN: {
            State.IN_PROGRESS,
            State.WAITING,
            State.RESOLVED,
            State.CLOSED,
            State.DECLINED,
        },
        State.IN_PROGRESS: {State.WAITING, State.RESOLVED, State.CLOSED, State.DECLINED},
        State.WAITING: {State.IN_PROGRESS, State.RESOLVED, State.CLOSED, State.DECLINED},
        State.RESOLVED: {State.IN_PROGRESS, State.CLOSED},  # reopened by a reply, or closed
        State.DECLINED: {State.OPEN, State.CLOSED},  # reclassified into support, or closed
        State.CLOSED: set(),
    },
)


# --- who may ask --------------------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    kind: str  # reseller | startup | lapsed | not_contact | no_plan
    message: str


def support_start(account: Account) -> date | None:
    """The support start date: the first paid support contract (on-premise) or the
    first paid period of the plan (cloud)."""
    kind = (
        Product.Kind.SUPPORT_CONTRACT
        if billing_selectors.licensed_users(account) is not None
        else Product.Kind.SUBSCRIPTION
    )
    first = (
        OrderLine.objects.filter(order__account=account, order__status=Order.Status.PAID, kind=kind)
        .exclude(period_start=None)
        .order_by("period_start")
        .values_list("period_start", flat=True)
        .first()
    )
    if first is not None:
        return first
    plan = Subscription.objects.plans().filter(account=account).order_by("created_at").first()
    return plan.current_period_start if plan else None


def support_refusal(*, account: Account, user=None, today: date) -> Refusal | None:
    """Why this account (or this member) cannot open an incident, or None."""
    if account.reseller_id:
        reseller = account.reseller
        how = f" at {reseller.support_email}" if reseller.support_email else ""
        return Refusal(
            "reseller",
            f"{account.name} bought through {reseller.name}: its support is provided by "
            f"{reseller.name}{how}.",
        )
    on_premise = billing_selectors.licensed_users(account) is not None
    if on_premise:
        if not billing_selectors.support_is_active(
            billing_selectors.support_contract(account), today
        ):
            return Refusal(
                "lapsed",
                "Your support contract is not active: renew it under Account Settings > "
                "Billing to open incidents.",
            )
    else:
        has_startup = Licence.objects.filter(
            account=account, product__edition=Product.Edition.STARTUP
        ).exists()
        plan = Subscription.objects.plans().filter(account=account).order_by("-created_at").first()
        live = plan is not None and plan.status in (
            Subscription.Status.ACTIVE,
            Subscription.Status.TRIALING,
        )
        if has_startup and not live:
            return Refusal(
                "startup",
                "Support is not available for the free Startup Edition. The "
                f"documentation is at {settings.SUPPORT_DOCS_URL}.",
            )
        if not live:
            return Refusal(
                "lapsed",
                "Support comes with an active subscription: renew it under Account Settings > "
                "Billing to open incidents.",
            )
    if user is not None:
        contact = support_contact(account)
        if contact is None or contact.user_id != user.pk:
            who = (
                f"{contact.user.get_full_name()} ({contact.user.email})"
                if contact
                else "nobody yet"
            )
            return Refusal(
                "not_contact",
                f"Support requests go through {account.name}'s designated support contact: {who}.",
            )
    return None


def support_contact(account: Account) -> Membership | None:
    return (
        Membership.objects.filter(account=account, is_support_contact=True, is_active=True)
        .select_related("user")
        .first()
    )


# --- the yearly quota ------------------------------------------------------------------------


@dataclass(frozen=True)
class Quota:
    year_start: date
    next_reset: date
    licensed: int
    quota: int
    used: int

    @property
    def left(self) -> int:
        return max(self.quota - self.used, 0)


def quota_for(seats: int) -> int:
    return max(settings.SUPPORT_MIN_INCIDENTS, seats // settings.SUPPORT_USERS_PER_INCIDENT)


def support_year(start: date, today: date) -> tuple[date, date]:
    """The support year holding `today`: both ends counted from the start date, so that
    a 29 February start keeps its anniversaries."""
    years = today.year - start.year
    if add_years(start, years) > today:
        years -= 1
    return add_years(start, years), add_years(start, years + 1)


def quota_get(*, account: Account, today: date) -> Quota | None:
    start = support_start(account)
    if start is None:
        return None
    year_start, next_reset = support_year(start, min(max(today, start), today))
    tz = account.tzinfo
    # Counted by when they were opened, so a start date found later moves nothing.
    window = (
        datetime.combine(year_start, time(0), tzinfo=tz),
        datetime.combine(next_reset, time(0), tzinfo=tz),
    )
    used = (
        Incident.objects.filter(
            account=account,
            opened_at__gte=window[0],
            opened_at__lt=window[1],
            billing=Incident.Billing.QUOTA,
        )
        .exclude(state__in=[State.DECLINED, State.AWAITING_PAYMENT])
        .count()
    )
    seats = account.seats_paid
    return Quota(year_start, next_reset, seats, quota_for(seats), used)


# --- scope -------------------------------------------------------------------------------

SCOPE_WORDS = {
    Incident.Scope.DEVELOPER: r"\b(custom(?:i[sz](?:e|ed|ing|ation))?\s+(?:code|module|field|report|development)|"
    r"develop(?:er|ment|ing)?|source code|programming|write (?:a |some )?code|sql query|php|javascript)\b",
    Incident.Scope.TRAINING: r"\b(training|train (?:us|our|my)|teach (?:us|me)|walk (?:us|me) through)\b",
    Incident.Scope.IMPLEMENTATION: r"\b(implementation|implement(?:ing)? (?:the|our|a)|install(?:ation|ing)?|"
    r"set ?up (?:our|a new) server|data migration|migrate our data)\b",
}


def classify_scope(text: str) -> str:
    """1CRM terms: support covers end-user issues with the standard product; developer or
    customisation questions, training and implementation are paid services."""
    lowered = text.lower()
    for scope, pattern in SCOPE_WORDS.items():
        if re.search(pattern, lowered):
            return scope
    return Incident.Scope.STANDARD


# --- incidents ---------------------------------------------------------------------------


def _next_deadline(incident: Incident):
    if incident.state in (State.OPEN, State.IN_PROGRESS) and incident.first_response_at is None:
        return incident.first_response_due_at
    if incident.state in (State.OPEN, State.IN_PROGRESS):
        return incident.update_due_at
    return None


def _deadline_name(incident: Incident) -> str:
    return "first response" if incident.first_response_at is None else "update"


def _breach_key(name: str, due) -> str:
    return f"{name} due {due.isoformat()}"


def _sweep_at(incident: Incident):
    """The next deadline, unless its breach is already recorded."""
    due = incident.next_deadline
    if due is None or _breach_key(_deadline_name(incident), due) in incident.breached:
        return None
    return due


def _save(incident: Incident, fields: list[str], *, state=None, actor=None, note="") -> None:
    """Save `fields` and the next deadline; a new `state` moves through INCIDENT."""

    def prepare(incident: Incident, old: str) -> list[str]:
        incident.next_deadline = _next_deadline(incident)
        incident.sweep_at = _sweep_at(incident)
        return ["next_deadline", "sweep_at"]

    if state is not None and INCIDENT.move(
        incident,
        state,
        actor=actor,
        action="incident.state_changed",
        changes={"note": note} if note else None,
        also=fields,
        prepare=prepare,
    ):
        return
    incident.next_deadline = _next_deadline(incident)
    incident.sweep_at = _sweep_at(incident)
    incident.save(update_fields=list(dict.fromkeys([*fields, "next_deadline", "sweep_at"])))


def _mail(incident: Incident, event: str) -> None:
    from .tasks import send_incident_email

    outbox.enqueue(send_incident_email, incident.pk, event)


def _start_clock(incident: Incident, now) -> None:
    """The first-response deadline of an incident that opens now."""
    first, _ = deadlines.targets(incident.severity)
    incident.first_response_due_at = deadlines.add_business_hours(now, first)


def incident_open(
    *,
    actor,
    account: Account,
    subject: str,
    description: str,
    severity: str,
    confirm_extra: bool = False,
    channel: str = Incident.Channel.WEB,
    now=None,
) -> Incident:
    """The designated contact opens an incident: in this year's quota, or as an extra
    incident billed once they confirm its price, or declined as out of scope."""
    now = now or timezone.now()
    subject = clean_text(subject, field="subject", label="a subject", max_length=200)
    description = (description or "").strip()
    if not description:
        raise PortalError("Describe the problem.", field="description")
    if len(description) > 20_000:
        raise PortalError("Describe it in at most 20,000 characters.", field="description")
    if severity not in Incident.Severity.values:
        raise PortalError("Choose a severity from P1 to P4.", field="severity")
    with transaction.atomic():
        account = lock_account(account)  # billing.locks' order: the account first
        today = account_today(account, now)
        refusal = support_refusal(account=account, user=actor, today=today)
        if refusal is not None:
            if refusal.kind == "not_contact":
                raise NotAllowed(refusal.message)
            raise PortalError(refusal.message, field="support", code=refusal.kind)
        quota = quota_get(account=account, today=today)
        scope = classify_scope(f"{subject}\n{description}")
        incident = Incident(
            number=f"tmp-{secrets.token_hex(6)}",
            account=account,
            opened_by=actor,
            channel=channel,
            subject=subject,
            description=description,
            severity=severity,
            scope=scope,
            support_year_start=quota.year_start,
            seats_at_open=quota.licensed,
            opened_at=now,
        )
        if scope != Incident.Scope.STANDARD:
            incident.state, incident.billing = State.DECLINED, Incident.Billing.FREE
        elif quota.left:
            incident.state, incident.billing = State.OPEN, Incident.Billing.QUOTA
            _start_clock(incident, now)
        else:
            waiting = Incident.objects.filter(account=account, state=State.AWAITING_PAYMENT).first()
            if waiting is not None:
                raise PortalError(
                    f"{waiting.number} is an extra incident awaiting payment of its order: pay "
                    "or cancel that order first.",
                    field="confirm_extra",
                )
            price = billing_selectors.support_incident_price(account)
            if not confirm_extra:
                raise PortalError(
                    f"This support year's {quota.quota} incident(s) are used (the quota "
                    f"resets on {formatting.day(quota.next_reset)}). An extra incident costs "
                    f"{price or 'US$150'}: confirm to open it.",
                    field="confirm_extra",
                    code="extra_needed",
                )
            incident.state, incident.billing = State.AWAITING_PAYMENT, Incident.Billing.BILLED
        incident.save()
        incident.number = f"INC-{now:%Y}-{incident.pk:06d}"
        _save(incident, ["number"])
        audit_record(
            actor=actor,
            action="incident.opened",
            target=incident,
            account=account,
            changes={"state": incident.state, "billing": incident.billing, "scope": scope},
        )
        if incident.state == State.AWAITING_PAYMENT:
            order = support_incident_order(
                actor=actor,
                account=account,
                description=f"Extra support incident {incident.number}",
                now=now,
            )
            incident.order = order
            incident.save(update_fields=["order"])
            if order.status == Order.Status.PAID:
                _opened_after_payment(incident, now=now)
        _mail(incident, "opened")
    return incident


def _opened_after_payment(incident: Incident, *, now) -> None:
    _start_clock(incident, now)
    _save(incident, ["first_response_due_at"], state=State.OPEN, note="extra incident paid")
    audit_record(
        actor=None,
        action="incident.extra_paid",
        target=incident,
        account=incident.account,
        changes={"order": incident.order.number if incident.order_id else ""},
    )


def on_order_paid(*, order: Order, actor, now) -> None:
    """Registered with billing: an extra incident opens once its order is paid."""
    for incident in Incident.objects.select_for_update(no_key=True).filter(
        order=order, state=State.AWAITING_PAYMENT
    ):
        _opened_after_payment(incident, now=now)
        _mail(incident, "opened")


def on_order_cancelled(*, order: Order, actor) -> None:
    """Registered with billing: an extra incident whose order is cancelled never opens."""
    now = timezone.now()
    for incident in Incident.objects.select_for_update(no_key=True).filter(
        order=order, state=State.AWAITING_PAYMENT
    ):
        incident.closed_at = now
        _save(
            incident,
            ["closed_at"],
            state=State.CLOSED,
            actor=actor,
            note="its order was cancelled",
        )
        audit_record(
            actor=actor,
            action="incident.withdrawn",
            target=incident,
            account=incident.account,
            changes={"order": order.number, "reason": "its order was cancelled"},
        )


def _record_breach(incident: Incident, name: str, due) -> bool:
    """Record a missed deadline once, and tell the support leads."""
    key = _breach_key(name, due)
    if key in incident.breached:
        return False
    incident.breached = [*incident.breached, key]
    audit_record(
        actor=None,
        action="incident.deadline_breached",
        target=incident,
        account=incident.account,
        changes={"deadline": key},
    )
    _mail(incident, f"breach:{name}")
    return True


def _lock(incident: Incident | int) -> Incident:
    """The account first (billing.locks' order), then the incident."""
    pk = incident if isinstance(incident, int) else incident.pk
    lock_account(Incident.objects.values_list("account_id", flat=True).get(pk=pk))
    return Incident.objects.select_for_update(no_key=True).get(pk=pk)


def incident_respond(
    *, actor, incident: Incident, body: str, internal: bool = False, wait: bool = False, now=None
) -> IncidentMessage:
    """Staff answer (or note internally). An answer is the first response or an update;
    `wait` puts the incident on the customer, which stops the clock."""
    now = now or timezone.now()
    body = (body or "").strip()
    if not body:
        raise PortalError("Write the answer.", field="body")
    with transaction.atomic():
        require_staff(actor, "support.change_incident")
        incident = _lock(incident)
        if incident.state not in Incident.ACTIVE_STATES and not internal:
            raise PortalError(
                f"{incident.number} is {incident.get_state_display().lower()}.", field="body"
            )
        message = IncidentMessage.objects.create(
            incident=incident,
            author=actor,
            from_staff=True,
            internal=internal,
            body=body,
            created_at=now,
        )
        fields, state = [], None
        if not internal:
            _, update = deadlines.targets(incident.severity)
            if incident.first_response_at is None:
                if incident.first_response_due_at and now > incident.first_response_due_at:
                    _record_breach(incident, "first response", incident.first_response_due_at)
                    fields.append("breached")
                incident.first_response_at = now
                fields.append("first_response_at")
            state = State.WAITING if wait else State.IN_PROGRESS
            incident.update_due_at = deadlines.add_business_hours(now, update)
            fields.append("update_due_at")
            if incident.assignee_id is None:
                incident.assignee = actor
                fields.append("assignee")
        _save(incident, fields, state=state, actor=actor)
        audit_record(
            actor=actor,
            action="incident.note" if internal else "incident.answered",
            target=incident,
            account=incident.account,
            changes={"state": incident.state, "internal": internal},
        )
        if not internal:
            _mail(incident, "answered")
    return message


def incident_reply(
    *, actor, incident: Incident, body: str, message_id: str = "", attachments=(), now=None
):
    """The customer writes; a waiting incident resumes, a resolved one reopens within
    SUPPORT_REOPEN_DAYS. `attachments` (uploads) are checked as refund evidence is; those
    checked already (accounts.uploads.Checked, from a mail) are not read again."""
    now = now or timezone.now()
    body = (body or "").strip()
    checked = files_check(attachments, field="attachments", default_name="attachment")
    if not body and checked:
        body = "(attachments only)"
    if not body:
        raise PortalError("Write your message.", field="body")
    if len(body) > 20_000:
        raise PortalError("Write at most 20,000 characters.", field="body")
    with transaction.atomic():
        incident = _lock(incident)
        if not Membership.objects.filter(
            account=incident.account, user=actor, is_active=True
        ).exists():
            raise NotAllowed("Only members of the account can write on its incidents.")
        reopening = incident.state in (State.RESOLVED, State.WAITING)
        state = incident.state
        if incident.state == State.RESOLVED:
            if now - incident.resolved_at > timedelta(days=settings.SUPPORT_REOPEN_DAYS):
                raise PortalError(
                    f"{incident.number} was resolved more than {settings.SUPPORT_REOPEN_DAYS} "
                    "days ago: open a new incident.",
                    field="body",
                )
            incident.reopened += 1
            state = State.IN_PROGRESS
        elif incident.state == State.WAITING:
            state = State.IN_PROGRESS
        elif incident.state not in (State.OPEN, State.IN_PROGRESS):
            raise PortalError(
                f"{incident.number} is {incident.get_state_display().lower()}.", field="body"
            )
        _, update = deadlines.targets(incident.severity)
        if incident.first_response_at is not None:
            due = deadlines.add_business_hours(now, update)
            # A customer's message never moves staff's deadline later.
            if incident.update_due_at is None or state != State.IN_PROGRESS or reopening:
                incident.update_due_at = due
            else:
                incident.update_due_at = min(incident.update_due_at, due)
        message = IncidentMessage.objects.create(
            incident=incident, author=actor, body=body, message_id=message_id[:998], created_at=now
        )
        attachments_save(incident, checked, message=message, now=now)
        _save(
            incident,
            ["reopened", "update_due_at"],
            state=state,
            actor=actor,
            note="customer replied",
        )
        audit_record(
            actor=actor,
            action="incident.customer_replied",
            target=incident,
            account=incident.account,
            changes={"state": incident.state},
        )
    return message


def incident_set_state(*, actor, incident: Incident, state: str, now=None) -> Incident:
    """Staff resolve or close an incident, as INCIDENT allows; an extra incident that
    awaits payment closes only with its order."""
    now = now or timezone.now()
    with transaction.atomic():
        require_staff(actor, "support.change_incident")
        incident = _lock(incident)
        if state not in (State.RESOLVED, State.CLOSED):
            raise PortalError("Staff resolve or close an incident.", field="state")
        if incident.state == State.AWAITING_PAYMENT:
            raise PortalError(
                f"{incident.number} awaits payment of its order: record or cancel the order first.",
                field="state",
            )
        INCIDENT.check(incident, state)
        stamp = "resolved_at" if state == State.RESOLVED else "closed_at"
        setattr(incident, stamp, now)
        _save(incident, [stamp], state=state, actor=actor)
        _mail(incident, state)
    return incident


def incident_update(
    *, actor, incident: Incident, severity=None, scope=None, billing=None, assignee=None, now=None
) -> Incident:
    """Staff change severity, scope (reclassify) or billing (billed or free), or assign."""
    now = now or timezone.now()
    with transaction.atomic():
        require_staff(actor, "support.change_incident")
        incident = _lock(incident)
        changes, fields, state = {}, [], None
        if severity is not None and severity != incident.severity:
            if severity not in Incident.Severity.values:
                raise PortalError("Choose a severity from P1 to P4.", field="severity")
            changes["severity"] = [incident.severity, severity]
            incident.severity = severity
            fields.append("severity")
            # The new severity's targets apply from now on.
            first, update = deadlines.targets(severity)
            if incident.first_response_at is None and incident.first_response_due_at:
                incident.first_response_due_at = deadlines.add_business_hours(
                    incident.opened_at, first
                )
                fields.append("first_response_due_at")
            elif incident.state == State.IN_PROGRESS:
                incident.update_due_at = deadlines.add_business_hours(now, update)
                fields.append("update_due_at")
        if scope is not None and scope != incident.scope:
            if scope not in Incident.Scope.values:
                raise PortalError("Choose a scope.", field="scope")
            changes["scope"] = [incident.scope, scope]
            incident.scope = scope
            fields.append("scope")
            if scope == Incident.Scope.STANDARD and incident.state == State.DECLINED:
                # Reclassified into support: it opens now, counted in the quota.
                state, incident.billing = State.OPEN, Incident.Billing.QUOTA
                _start_clock(incident, now)
                fields += ["billing", "first_response_due_at"]
            elif scope != Incident.Scope.STANDARD and incident.state in Incident.ACTIVE_STATES:
                state, incident.billing = State.DECLINED, Incident.Billing.FREE
                fields.append("billing")
        if billing is not None and billing != incident.billing:
            if billing not in Incident.Billing.values:
                raise PortalError("Choose quota, billed or free.", field="billing")
            if incident.state == State.AWAITING_PAYMENT:
                raise PortalError(
                    f"{incident.number} awaits payment of its order: record or cancel the order "
                    "first.",
                    field="billing",
                )
            changes["billing"] = [incident.billing, billing]
            incident.billing = billing
            fields.append("billing")
        if assignee is not None and assignee.pk != incident.assignee_id:
            changes["assignee"] = [incident.assignee_id, assignee.pk]
            incident.assignee = assignee
            fields.append("assignee")
        if fields:
            _save(incident, fields, state=state, actor=actor, note="reclassified" if state else "")
            audit_record(
                actor=actor,
                action="incident.updated",
                target=incident,
                account=incident.account,
                changes=changes,
            )
    return incident


def incident_deadlines_sweep(*, now=None) -> int:
    """Escalate each missed first response or update to the support leads, once. Only
    incidents whose breach is still to record are read (incident_active_sweep_at)."""
    now = now or timezone.now()
    breached = 0
    due = Incident.objects.filter(state__in=Incident.ACTIVE_STATES, sweep_at__lt=now).values_list(
        "pk", flat=True
    )
    for pk in list(due):
        with transaction.atomic():
            incident = _lock(pk)
            if incident.next_deadline is None or incident.next_deadline >= now:
                continue
            if _record_breach(incident, _deadline_name(incident), incident.next_deadline):
                breached += 1
            incident.sweep_at = _sweep_at(incident)
            incident.save(update_fields=["breached", "sweep_at"])
    return breached


def attachments_save(incident: Incident, checked, *, message=None, now=None) -> None:
    """Files checked by accounts.uploads.files_check, kept with the incident (or one of
    its messages). Call inside the change's transaction."""
    now = now or timezone.now()
    for _upload, name, content_type, content in checked:
        IncidentAttachment.objects.create(
            incident=incident,
            message=message,
            file=ContentFile(content, name=f"{secrets.token_hex(8)}-{safe_filename(name)}"),
            name=name,
            content_type=content_type,
            size=len(content),
            sha256=hashlib.sha256(content).hexdigest(),
            created_at=now,
        )
