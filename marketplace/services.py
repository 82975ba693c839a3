"""Every change in the marketplace: listings and their review, installing and cancelling
apps (onecloud §4), usage reported by developers, webhooks, earnings and payouts.

Money is billing's: a paid plan is sold through billing's public services, and what was
paid or refunded reaches this app through billing's hooks (marketplace.apps).
"""

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from accounts import formatting
from accounts.errors import NotAllowed, PortalError
from accounts.models import CURRENCIES, Account
from accounts.selectors import acts_on_billing
from accounts.services import audit_record, require_staff
from accounts.state_machine import machine_for
from billing import services as billing
from billing.hooks import REFUND_ADVISOR, lines_held
from billing.locks import lock_account
from billing.models import Order, OrderLine, Product, Subscription
from billing.money import Money
from billing.selectors import EDITION_NEEDS, EDITION_RANK, account_edition, account_today
from billing.selectors import usage_price as billing_usage_price
from core import outbox

from . import tasks
from .models import (
    App,
    AppUsage,
    Developer,
    DeveloperPayout,
    Earning,
    Installation,
    Plan,
    WebhookDelivery,
)

_A, _I = App.Status, Installation.State

APP = machine_for(
    App,
    field="status",
    noun="app",
    transitions={
        _A.DRAFT: {_A.IN_REVIEW},
        _A.IN_REVIEW: {_A.PUBLISHED, _A.DRAFT},  # approved, or sent back to its developer
        _A.PUBLISHED: {_A.DELISTED},
        _A.DELISTED: {_A.PUBLISHED, _A.IN_REVIEW},
    },
)

INSTALLATION = machine_for(
    Installation,
    field="state",
    noun="installation",
    transitions={
        _I.PENDING: {_I.ACTIVE, _I.CANCELLED, _I.UNINSTALLED},
        _I.TRIALING: {_I.ACTIVE, _I.CANCELLED, _I.SUSPENDED, _I.UNINSTALLED},
        _I.ACTIVE: {_I.CANCELLED, _I.SUSPENDED, _I.UNINSTALLED},
        _I.SUSPENDED: {_I.ACTIVE, _I.CANCELLED, _I.UNINSTALLED},
        _I.CANCELLED: {_I.UNINSTALLED, _I.PENDING, _I.TRIALING, _I.ACTIVE},
        _I.UNINSTALLED: {_I.PENDING, _I.TRIALING, _I.ACTIVE},  # installed again
    },
)

APP_REFUND_DAYS = 3  # onecloud §4: the window a developer's own refund_days replaces
CAP_ALERTS = (80, 100)  # per cent of the monthly cap at which the customer is mailed
MAX_USAGE_QUANTITY = 1_000_000


# --- listings (staff) ------------------------------------------------------------------


def app_set_status(*, actor, app: App, status: str, now=None) -> App:
    """Review, publish or delist an app (one transition table)."""
    now = now or timezone.now()
    with transaction.atomic():
        require_staff(actor, "marketplace.change_app")
        app = App.objects.select_for_update(of=("self",)).select_related("developer").get(pk=app.pk)
        if status == _A.PUBLISHED:
            if not app.plans.filter(is_active=True).exists():
                raise PortalError(
                    f"{app.name} has no plan: add one before publishing.", field="status"
                )
            if app.developer.status != Developer.Status.ACTIVE:
                raise PortalError(f"{app.developer.name} is suspended.", field="status")
        APP.move(
            app,
            status,
            actor=actor,
            action=f"app.{status}",
            prepare=lambda obj, old: (
                ["published_at"]
                if status == _A.PUBLISHED and setattr(obj, "published_at", now) is None
                else []
            ),
        )
    return app


def app_api_key_rotate(*, actor, app: App) -> str:
    """A new developer API secret for the app; the old one stops at once. Shown once."""
    require_staff(actor, "marketplace.change_app")
    prefix = secrets.token_hex(4)
    secret = f"mkp_{prefix}_{secrets.token_urlsafe(24)}"
    with transaction.atomic():
        app = App.objects.select_for_update().get(pk=app.pk)
        app.api_key_prefix = prefix
        app.api_key_hash = hashlib.sha256(secret.encode()).hexdigest()
        app.save(update_fields=["api_key_prefix", "api_key_hash"])
        audit_record(
            actor=actor, action="app.api_key_rotated", target=app, changes={"prefix": prefix}
        )
    return secret


def app_from_api_key(secret: str) -> App | None:
    parts = (secret or "").split("_")
    if len(parts) < 3 or parts[0] != "mkp":
        return None
    app = App.objects.filter(api_key_prefix=parts[1]).select_related("developer").first()
    if app is None or not app.api_key_hash or app.developer.status != Developer.Status.ACTIVE:
        return None
    digest = hashlib.sha256(secret.encode()).hexdigest()
    return app if hmac.compare_digest(digest, app.api_key_hash) else None


def app_webhook_secret_rotate(*, actor, app: App) -> str:
    require_staff(actor, "marketplace.change_app")
    with transaction.atomic():
        app = App.objects.select_for_update().get(pk=app.pk)
        app.webhook_secret = f"whsec_{secrets.token_urlsafe(24)}"
        app.save(update_fields=["webhook_secret"])
        audit_record(actor=actor, action="app.webhook_secret_rotated", target=app)
    return app.webhook_secret


def plan_product_sync(*, actor, plan: Plan) -> Plan:
    """Sell a paid plan through billing: its product, of the app kind of its model, and
    its price (a changed price is a new price row; what was sold keeps its terms)."""
    require_staff(actor, "marketplace.change_plan")
    if not plan.is_paid:
        return plan
    interval = {"subscription": plan.interval, "usage": "month"}.get(plan.pricing_model, "one_off")
    product = billing.app_product_save(
        actor=actor,
        code=f"app-{plan.app.slug}-{plan.code}"[:60],
        name=f"{plan.app.name} ({plan.name})",
        kind=plan.kind,
        prices=[(plan.currency, plan.amount, plan.scheme, interval)],
        requires_edition=plan.requires_edition,
    )
    if plan.product_id != product.pk:
        plan.product = product
        plan.save(update_fields=["product"])
    return plan


# --- installing ------------------------------------------------------------------------


@dataclass
class Outcome:
    """What an install or a cancel did, for the page and the API to say."""

    installation: Installation
    message: str
    order: Order | None = None
    redirect_url: str = ""
    refund: dict | None = None  # the refund the policy offers now, if any
    notes: list[str] = field(default_factory=list)


def _require_billing(actor, account: Account) -> None:
    if not acts_on_billing(user=actor, account=account):
        raise NotAllowed("Only owners and billing admins install, change or cancel apps.")


def lock_installation(installation: Installation | int) -> Installation:
    """The installation's row, fresh and locked; the caller holds the account's lock."""
    pk = installation if isinstance(installation, int) else installation.pk
    return (
        Installation.objects.select_for_update(no_key=True, of=("self",))
        .select_related("app__developer", "plan", "account")
        .get(pk=pk)
    )


def plan_refusal(account: Account, plan: Plan) -> str | None:
    """Why the account cannot have this plan (1CRM terms: an edition it needs). A licence
    it needs besides may be bought after installing; until then it does not work."""
    if plan.is_paid and plan.product_id is None:
        return f"{plan.name} is not for sale yet."
    need = plan.requires_edition
    if need and EDITION_RANK.get(account_edition(account), 0) < EDITION_RANK[need]:
        return f"{plan.app.name} works only with {EDITION_NEEDS[need]}."
    if plan.is_paid and account.reseller_id:
        return f"{account.name}'s billing is provided by {account.reseller.name}."
    if plan.is_paid and plan.currency != account.currency:
        return f"{plan.name} is sold in {plan.currency}; {account.name} pays in {account.currency}."
    return None


def _clean_cap(value, plan: Plan, *, default: bool = True) -> Decimal | None:
    """The monthly cap given; left empty, the plan's default when installing, or no cap."""
    if value in (None, ""):
        return plan.default_cap if default else None
    try:
        cap = Money(Decimal(str(value)), plan.currency).rounded().amount
    except (ArithmeticError, ValueError):
        raise PortalError(
            "Give the monthly cap as an amount, such as 50.00.", field="usage_cap"
        ) from None
    if not cap.is_finite() or cap < 0 or cap > Decimal("1000000"):
        raise PortalError("The monthly cap is between 0 and 1,000,000.", field="usage_cap")
    return cap


def installation_install(
    *,
    actor,
    account: Account,
    app: App,
    plan: Plan,
    usage_cap=None,
    quantity: int = 1,
    now=None,
) -> Outcome:
    """Install an app on a plan. Free: at once. A trial: no order and no charge. Paid: an
    order through billing, the app active the moment it is paid (delivery policy §1-2).
    External: installed, and the customer is sent to the developer to pay."""
    now = now or timezone.now()
    with transaction.atomic():
        account = lock_account(account)
        _require_billing(actor, account)
        app = App.objects.select_related("developer").get(pk=app.pk)
        if app.status != _A.PUBLISHED:
            raise PortalError(f"{app.name} is not available on the marketplace.", field="app")
        if plan.app_id != app.pk or not plan.is_active:
            raise PortalError(f"“{plan.name}” is not a plan of {app.name}.", field="plan")
        refusal = plan_refusal(account, plan)
        if refusal:
            raise PortalError(refusal, field="plan", code="not_entitled")
        if (
            not isinstance(quantity, int)
            or isinstance(quantity, bool)
            or not 1 <= quantity <= 10_000
        ):
            raise PortalError("Give a whole number of seats, 1 to 10,000.", field="quantity")
        existing = (
            Installation.objects.select_for_update(no_key=True)
            .filter(account=account, app=app)
            .first()
        )
        if existing is not None and existing.state not in (_I.CANCELLED, _I.UNINSTALLED):
            raise PortalError(
                f"{app.name} is already installed ({existing.get_state_display().lower()}).",
                field="app",
            )
        if (
            existing is not None
            and existing.subscription_id
            and existing.subscription.status not in (Subscription.Status.CANCELLED,)
        ):
            raise PortalError(
                f"{app.name} stays yours until {existing.subscription.last_day.day} "
                f"{existing.subscription.last_day:%B %Y}; install it again after that.",
                field="app",
            )
        inst = existing or Installation(account=account, app=app, plan=plan, state=_I.PENDING)
        inst.plan, inst.pending_plan = plan, None
        inst.installed_by = actor if actor is not None and actor.pk else None
        inst.scopes = list(app.scopes)
        inst.installed_at, inst.ended_at = now, None
        held = _licence_held(existing, plan)  # a lifetime licence the account still holds
        inst.subscription, inst.order = None, None
        inst.licence_line = held
        inst.usage_cap = None
        order, message, redirect_url, new_state = None, "", "", _I.ACTIVE
        had_trial = existing is not None and existing.trial_end is not None
        # onecloud §4 refunds the initial purchase only: an account that paid for this app
        # before, or used its trial, is not buying it for the first time.
        first_purchase = not had_trial and not _paid_before(account, app)
        if plan.pricing_model == Plan.Model.FREE:
            message = f"{app.name} is installed."
        elif plan.pricing_model == Plan.Model.EXTERNAL:
            redirect_url = plan.external_url
            message = f"{app.name} is installed: pay {app.developer.name} on their site to use it."
        elif plan.pricing_model == Plan.Model.USAGE:
            inst.usage_cap = _clean_cap(usage_cap, plan)
            # This month's use so far still counts against the cap (it is billed anyway).
            _roll_month(inst, account_today(account, now))
            if inst.usage_cap is not None and inst.usage_amount > inst.usage_cap:
                inst.usage_cap = inst.usage_amount
            inst.cap_alerted = _alert_level(inst)
            message = f"{app.name} is installed: you pay for what it uses, each month."
        elif plan.pricing_model == Plan.Model.SUBSCRIPTION:
            trial = plan.trial_days if not had_trial else 0
            subscription, order = billing.app_subscription_start(
                actor=actor,
                account=account,
                product=plan.product,
                quantity=quantity,
                trial_days=trial,
                refund_days=plan.refund_days,
                first_purchase=first_purchase,
                now=now,
            )
            inst.subscription, inst.order = subscription, order
            if trial:
                new_state = _I.TRIALING
                inst.trial_end = subscription.trial_end
                inst.trial_mails = 0
                last = subscription.last_day
                message = (
                    f"Your free trial of {app.name} runs until {formatting.day(last)}. "
                    "Cancel before then and nothing is charged; the first paid cycle after the "
                    "trial is not refundable (App Marketplace policy, section 4)."
                )
            elif subscription.status == Subscription.Status.ACTIVE:
                message = f"{app.name} is installed and paid ({order.number})."
            else:
                new_state = _I.PENDING
                message = f"{app.name} starts the moment {order.number} is paid."
        elif held is not None:
            message = f"{app.name} is installed again with the lifetime licence you hold."
        else:  # one-time: a lifetime licence key through billing
            order = billing.app_licence_buy(
                actor=actor, account=account, product=plan.product, now=now
            )
            inst.order = order
            order.refresh_from_db()
            if order.status == Order.Status.PAID:
                inst.licence_line = order.lines.first()
                message = f"{app.name} is yours for life ({order.number}); its key is on its way."
            else:
                new_state = _I.PENDING
                message = f"{app.name} is yours the moment {order.number} is paid."
        if inst.pk is None:
            inst.state = new_state
            inst.save()
            audit_record(
                actor=actor,
                action="installation.created",
                target=inst,
                account=account,
                changes={"app": app.slug, "plan": plan.code, "state": new_state},
            )
        else:
            inst.save()
            INSTALLATION.move(
                inst,
                new_state,
                actor=actor,
                action="installation.reinstalled",
                changes={"plan": plan.code},
            )
        webhook_emit(app=app, installation=inst, event=WebhookDelivery.Event.INSTALLED)
    return Outcome(installation=inst, message=message, order=order, redirect_url=redirect_url)


def _licence_held(inst: Installation | None, plan: Plan) -> OrderLine | None:
    """The lifetime licence line an earlier installation left, if its key is still good."""
    if inst is None or inst.licence_line_id is None or plan.pricing_model != Plan.Model.ONE_TIME:
        return None
    line = OrderLine.objects.filter(
        pk=inst.licence_line_id, licence__status="active", product_id=plan.product_id
    ).first()
    return line


def _paid_before(account: Account, app: App) -> bool:
    products = [pk for pk in app.plans.values_list("product_id", flat=True) if pk]
    return OrderLine.objects.filter(
        order__account=account,
        order__status=Order.Status.PAID,
        product_id__in=products,
        amount__gt=0,
    ).exists()


def _first_paid_line(inst: Installation) -> OrderLine | None:
    if inst.subscription_id:
        return (
            OrderLine.objects.filter(
                subscription_id=inst.subscription_id,
                order__status=Order.Status.PAID,
                amount__gt=0,
            )
            .select_related("order", "subscription")
            .order_by("order__paid_at", "pk")
            .last()
        )
    if inst.licence_line_id:
        return OrderLine.objects.select_related("order").get(pk=inst.licence_line_id)
    return None


def refund_offer(inst: Installation, *, now=None) -> dict | None:
    """The refund the policy gives today on the installation's paid cycle or licence (the
    engine's own words and amount), or for an external app its developer's contact."""
    advise = REFUND_ADVISOR.get("outlook")
    if inst.plan.pricing_model == Plan.Model.EXTERNAL:
        contact = inst.plan.external_refund_contact or inst.app.developer.refund_contact
        terms = REFUND_ADVISOR.get("terms")
        return {
            "outcome": "redirect",
            "amount": None,
            "explanation": terms("app_external") if terms else "",
            "contact": contact,
            "request_url": "",
        }
    line = _first_paid_line(inst)
    if line is None or advise is None or line.refundable_left <= 0:
        return None
    decision = advise(inst.account, [line], account_today(inst.account, now))[line.pk]
    return {
        "outcome": decision.outcome,
        "amount": str(decision.amount),
        "currency": inst.account.currency,
        "explanation": decision.explanation,
        "last_day": decision.last_day.isoformat() if decision.last_day else None,
        "last_day_text": formatting.day(decision.last_day),
        "clause": decision.clause,
        "order": line.order.number,
        "order_id": line.order_id,
        "line_id": line.pk,
        "contact": "",
    }


def installation_cancel(
    *, actor, installation: Installation, uninstall: bool = False, now=None
) -> Outcome:
    """Cancel (onecloud §4): in a trial nothing is ever charged; a paid subscription runs
    to the end of its period and does not renew, and within its refund window the page
    offers the prorated refund; a lifetime licence stays the account's. `uninstall` also
    removes the app from the account now (access ends; nothing more is refunded)."""
    now = now or timezone.now()
    with transaction.atomic():
        account = lock_account(installation.account_id)
        _require_billing(actor, account)
        inst = lock_installation(installation)
        if inst.state == _I.UNINSTALLED or (inst.state == _I.CANCELLED and not uninstall):
            raise PortalError(
                f"{inst.app.name} is {inst.get_state_display().lower()} already.", field="state"
            )
        message = f"{inst.app.name} is cancelled."
        if inst.subscription_id:
            what = billing.app_subscription_cancel(
                actor=actor, subscription=inst.subscription, now=now
            )
            inst = lock_installation(inst)  # billing's hooks may have moved it
            if what == "ended":
                message = (
                    f"Your trial of {inst.app.name} is cancelled: nothing is charged "
                    "(App Marketplace policy, section 4)."
                )
            elif what == "withdrawn":
                message = f"{inst.app.name} is cancelled and its unpaid order withdrawn."
            elif what == "at_period_end":
                sub = Subscription.objects.get(pk=inst.subscription_id)
                message = (
                    f"{inst.app.name} is cancelled: it works until {sub.last_day.day} "
                    f"{sub.last_day:%B %Y} and does not renew."
                )
        elif inst.licence_line_id and not uninstall:
            raise PortalError(
                f"{inst.app.name} is a lifetime licence: there is nothing to cancel. Uninstall "
                "it to remove it; the licence stays yours to install again.",
                field="state",
            )
        elif inst.order_id and inst.order.status == Order.Status.AWAITING_PAYMENT:
            # A lifetime licence not paid yet: its order is withdrawn (credit returned).
            billing.order_cancel(actor=actor, order=inst.order, now=now)
            inst = lock_installation(inst)  # the order's hook cancelled it
            message = f"{inst.app.name} is cancelled and its unpaid order withdrawn."
        if uninstall:
            inst.ended_at = now
            INSTALLATION.move(
                inst,
                _I.UNINSTALLED,
                actor=actor,
                action="installation.uninstalled",
                also=["ended_at"],
            )
            message += " It is uninstalled."
            webhook_emit(app=inst.app, installation=inst, event=WebhookDelivery.Event.UNINSTALLED)
        elif inst.state != _I.CANCELLED and not (
            inst.subscription_id
            and Subscription.objects.filter(
                pk=inst.subscription_id,
                cancel_at_period_end=True,
                status=Subscription.Status.ACTIVE,
            ).exists()
        ):
            inst.ended_at = now
            INSTALLATION.move(
                inst, _I.CANCELLED, actor=actor, action="installation.cancelled", also=["ended_at"]
            )
            webhook_emit(app=inst.app, installation=inst, event=WebhookDelivery.Event.CANCELLED)
        else:
            audit_record(
                actor=actor, action="installation.cancel_requested", target=inst, account=account
            )
            webhook_emit(
                app=inst.app, installation=inst, event=WebhookDelivery.Event.CANCEL_SCHEDULED
            )
        offer = refund_offer(inst, now=now)
    return Outcome(installation=inst, message=message, refund=offer)


def installation_change_plan(*, actor, installation: Installation, plan: Plan, now=None) -> Outcome:
    """Move to another subscription plan of the same app: at once in a trial, else from
    the next renewal (what was paid keeps its price). Other moves are cancel and install."""
    with transaction.atomic():
        account = lock_account(installation.account_id)
        _require_billing(actor, account)
        inst = lock_installation(installation)
        if plan.app_id != inst.app_id or not plan.is_active:
            raise PortalError(f"“{plan.name}” is not a plan of {inst.app.name}.", field="plan")
        if plan.pk == inst.plan_id and inst.pending_plan_id is None:
            return Outcome(installation=inst, message=f"{inst.app.name} is on {plan.name} already.")
        if not (
            inst.subscription_id and plan.pricing_model == Plan.Model.SUBSCRIPTION and inst.is_live
        ):
            raise PortalError(
                "Only a live subscription moves to another subscription plan; cancel and "
                "install the other plan instead.",
                field="plan",
            )
        refusal = plan_refusal(account, plan)
        if refusal:
            raise PortalError(refusal, field="plan", code="not_entitled")
        when = billing.app_subscription_switch(
            actor=actor, subscription=inst.subscription, product=plan.product
        )
        old = inst.pending_plan or inst.plan
        if when in ("undone", "none"):
            inst.pending_plan = None
            message = f"{inst.app.name} stays on {plan.name}: the planned move is undone."
        elif when == "now":
            inst.plan, inst.pending_plan = plan, None
            message = f"{inst.app.name} is on {plan.name} now."
        else:
            inst.pending_plan = plan
            sub = Subscription.objects.get(pk=inst.subscription_id)
            when_day = sub.current_period_end
            message = f"{inst.app.name} moves to {plan.name} on {formatting.day(when_day)}."
        inst.save(update_fields=["plan", "pending_plan"])
        audit_record(
            actor=actor,
            action="installation.plan_changed",
            target=inst,
            account=account,
            changes={"plan": [old.code, plan.code], "when": when},
        )
        webhook_emit(app=inst.app, installation=inst, event=WebhookDelivery.Event.PLAN_CHANGED)
    return Outcome(installation=inst, message=message)


def installation_set_cap(*, actor, installation: Installation, usage_cap, now=None) -> Installation:
    """The customer's monthly cap on a usage app: never below what this month used."""
    now = now or timezone.now()
    with transaction.atomic():
        account = lock_account(installation.account_id)
        _require_billing(actor, account)
        inst = lock_installation(installation)
        if inst.plan.pricing_model != Plan.Model.USAGE:
            raise PortalError(f"{inst.app.name} is not billed by use.", field="usage_cap")
        cap = _clean_cap(usage_cap, inst.plan, default=False)
        _roll_month(inst, account_today(account, now))
        if cap is not None and cap < inst.usage_amount:
            used = Money(inst.usage_amount, inst.plan.currency)
            raise PortalError(
                f"This month used {used} already: the cap cannot be lower than {used}.",
                field="usage_cap",
            )
        old = inst.usage_cap
        inst.usage_cap = cap
        inst.cap_alerted = _alert_level(inst)
        inst.save(
            update_fields=["usage_cap", "cap_alerted", "usage_month", "usage_units", "usage_amount"]
        )
        audit_record(
            actor=actor,
            action="installation.cap_changed",
            target=inst,
            account=account,
            changes={"usage_cap": [str(old), str(cap)]},
        )
    return inst


# --- billing's hooks: what was paid, moved, cancelled or refunded -----------------------


def _installation_for_line(line: OrderLine) -> Installation | None:
    if line.subscription_id:
        return Installation.objects.filter(subscription_id=line.subscription_id).first()
    return Installation.objects.filter(
        order_id=line.order_id, app__plans__product_id=line.product_id
    ).first()


def on_order_paid(*, order: Order, actor, now) -> None:
    """An app line is paid: the app works at once, the developer earns its share, and
    hears of the charge."""
    for line in order.lines.filter(product__app_plan__isnull=False).select_related(
        "product__app_plan__app__developer", "order"
    ):
        plan = line.product.app_plan
        inst = _installation_for_line(line)
        if inst is not None:
            inst = lock_installation(inst)
            if line.kind == Product.Kind.APP_ONE_TIME and inst.licence_line_id is None:
                inst.licence_line = line
                inst.save(update_fields=["licence_line"])
            if inst.pending_plan_id and inst.pending_plan.product_id == line.product_id:
                # The plan chosen for the next cycle is the one now paid for.
                old_plan, inst.plan, inst.pending_plan = inst.plan, inst.pending_plan, None
                inst.save(update_fields=["plan", "pending_plan"])
                audit_record(
                    actor=actor,
                    action="installation.plan_changed",
                    target=inst,
                    account=inst.account,
                    changes={"plan": [old_plan.code, inst.plan.code], "order": order.number},
                )
            if (
                inst.state in (_I.PENDING, _I.TRIALING, _I.SUSPENDED)
                and line.effect != OrderLine.Effect.USAGE
            ):
                INSTALLATION.move(
                    inst,
                    _I.ACTIVE,
                    actor=actor,
                    action="installation.paid",
                    changes={"order": order.number},
                )
        if line.amount > 0:
            earning_record(line=line, plan=plan, now=now)
            webhook_emit(
                app=plan.app,
                installation=inst,
                event=WebhookDelivery.Event.CHARGED,
                data={
                    "order": order.number,
                    "line": line.pk,
                    "amount": str(line.amount),
                    "currency": order.currency,
                    "description": line.description,
                },
            )


def on_order_cancelled(*, order: Order, actor) -> None:
    for inst in Installation.objects.filter(order=order, state=_I.PENDING):
        inst = lock_installation(inst)
        INSTALLATION.move(
            inst,
            _I.CANCELLED,
            actor=actor,
            action="installation.order_withdrawn",
            changes={"order": order.number},
        )


SUBSCRIPTION_STATE = {
    Subscription.Status.ACTIVE: _I.ACTIVE,
    Subscription.Status.LAPSED: _I.SUSPENDED,  # a renewal not paid: the app stops
    Subscription.Status.CANCELLED: _I.CANCELLED,
}


def on_subscription_moved(subscription: Subscription, old: str, new: str, actor) -> None:
    target = SUBSCRIPTION_STATE.get(new)
    if target is None or not _may_be_app_subscription(subscription):
        return
    inst = Installation.objects.filter(subscription_id=subscription.pk).first()
    if inst is None:
        return
    inst = lock_installation(inst)
    if inst.state == _I.UNINSTALLED or not INSTALLATION.allows(inst.state, target):
        return
    if target == _I.CANCELLED:
        inst.ended_at = timezone.now()
    if INSTALLATION.move(
        inst,
        target,
        actor=actor,
        action=f"installation.{target}",
        changes={"subscription": [old, new]},
        also=["ended_at"],
    ):
        event = {
            _I.ACTIVE: WebhookDelivery.Event.ACTIVATED,
            _I.SUSPENDED: WebhookDelivery.Event.SUSPENDED,
            _I.CANCELLED: WebhookDelivery.Event.CANCELLED,
        }[target]
        webhook_emit(app=inst.app, installation=inst, event=event)


def _may_be_app_subscription(subscription: Subscription) -> bool:
    """False only when the plan's product, already loaded, is not of an app kind: an
    installation holds only an app plan's subscription (its Plan.product), so every other
    plan's move (a renewal's, say) is passed over without a query."""
    if not Subscription.price.is_cached(subscription):
        return True
    price = subscription.price
    if not type(price).product.is_cached(price):
        return True
    return price.product.kind in Product.APP_KINDS


def on_line_refunded(line: OrderLine, refund) -> None:
    """Money came back on an app line: the developer's share of it is reversed, and the
    developer hears of the refund; a lifetime licence refunded whole ends its install."""
    earning = (
        Earning.objects.filter(line=line, refund__isnull=True)
        .select_related("developer", "app")
        .first()
    )
    if earning is None:
        return
    # The share the line was earned at (the developer's share may have changed since).
    share = earning.net / earning.gross if earning.gross else Decimal(0)
    gross = -refund.amount
    net = -(refund.amount * share).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)
    reversal = Earning.objects.create(
        developer=earning.developer,
        app=earning.app,
        line=line,
        refund=refund,
        currency=refund.currency,
        gross=gross,
        fee=gross - net,
        net=net,
        # Held with the share it reverses, so both are released (and paid) together.
        status=Earning.Status.HELD
        if earning.status == Earning.Status.HELD
        else Earning.Status.AVAILABLE,
        available_on=earning.available_on,
        earned_on=account_today(line.order.account, refund.created_at),
    )
    audit_record(
        actor=None,
        action="earning.reversed",
        target=reversal,
        account=line.order.account,
        changes={"net": str(net), "refund": refund.reference},
    )
    inst = _installation_for_line(line)
    if (
        inst is not None
        and line.kind == Product.Kind.APP_ONE_TIME
        and line.refunded + refund.amount >= line.amount
    ):
        inst = lock_installation(inst)
        if INSTALLATION.allows(inst.state, _I.CANCELLED):
            INSTALLATION.move(
                inst,
                _I.CANCELLED,
                actor=None,
                action="installation.refunded",
                changes={"refund": refund.reference},
            )
    webhook_emit(
        app=earning.app,
        installation=inst,
        event=WebhookDelivery.Event.REFUNDED,
        data={
            "line": line.pk,
            "amount": str(refund.amount),
            "currency": refund.currency,
            "reference": refund.reference,
        },
    )


# --- usage from the developer API --------------------------------------------------------


def _roll_month(inst: Installation, today: date) -> None:
    month = today.replace(day=1)
    if inst.usage_month != month:
        inst.usage_month, inst.usage_units, inst.usage_amount, inst.cap_alerted = (
            month,
            0,
            Decimal(0),
            0,
        )


def _alert_level(inst: Installation) -> int:
    if not inst.usage_cap:
        return 100 if inst.usage_cap == 0 else 0
    used = inst.usage_amount / inst.usage_cap * 100
    return max((level for level in CAP_ALERTS if used >= level), default=0)


@dataclass(frozen=True)
class UsageResult:
    usage: AppUsage
    created: bool


MAX_BATCH = 1000


def _clean_key(key) -> str:
    key = (key or "").strip() if isinstance(key, str) else ""
    if not key or len(key) > 100 or any(ord(ch) < 33 or ord(ch) > 126 for ch in key):
        raise PortalError(
            "Send an Idempotency-Key of 1 to 100 visible characters.", field="Idempotency-Key"
        )
    return key


def _clean_quantity(quantity) -> int:
    if (
        not isinstance(quantity, int)
        or isinstance(quantity, bool)
        or not 1 <= quantity <= MAX_USAGE_QUANTITY
    ):
        raise PortalError(
            f"quantity is a whole number from 1 to {MAX_USAGE_QUANTITY:,}.", field="quantity"
        )
    return quantity


def usage_report(
    *,
    app: App,
    installation_id,
    quantity,
    idempotency_key: str,
    used_on: date | None = None,
    now=None,
) -> UsageResult:
    """A developer reports use of its app by an installation. The same Idempotency-Key
    twice is one record; use that would pass the customer's monthly cap is refused."""
    return usage_report_many(
        app=app,
        installation_id=installation_id,
        entries=[(idempotency_key, quantity, used_on)],
        now=now,
    )[0]


def usage_report_many(*, app: App, installation_id, entries, now=None) -> list[UsageResult]:
    """Up to 1,000 reports at once, each (idempotency key, quantity, used_on or None): all
    recorded, or none when one is wrong or the new ones together would pass the cap.
    Keys already recorded are answered with their record, as a replay."""
    now = now or timezone.now()
    if not entries or len(entries) > MAX_BATCH:
        raise PortalError(f"Send 1 to {MAX_BATCH:,} records at a time.", field="records")
    wanted = [
        (_clean_key(key), _clean_quantity(quantity), used_on) for key, quantity, used_on in entries
    ]
    if len({key for key, _, _ in wanted}) != len(wanted):
        raise PortalError(
            "Each record in one request has its own Idempotency-Key.", field="records"
        )
    inst = Installation.objects.filter(pk=installation_id, app=app).only("pk", "account_id").first()
    if inst is None:
        raise Installation.DoesNotExist
    with transaction.atomic():
        account = lock_account(inst.account_id)
        inst = (
            Installation.objects.select_for_update(no_key=True, of=("self",))
            .select_related("plan__product")
            .get(pk=inst.pk)
        )
        done = {
            usage.idempotency_key: usage
            for usage in AppUsage.objects.filter(
                installation=inst, idempotency_key__in=[key for key, _, _ in wanted]
            )
        }
        for key, quantity, _ in wanted:
            if key in done and done[key].quantity != quantity:
                raise PortalError(
                    f"Idempotency-Key {key} was used for a quantity of {done[key].quantity}.",
                    field="Idempotency-Key",
                )
        fresh = [row for row in wanted if row[0] not in done]
        if not fresh:
            return [UsageResult(done[key], False) for key, _, _ in wanted]
        if inst.plan.pricing_model != Plan.Model.USAGE:
            raise PortalError(
                f"{app.name} is not billed by use on this installation's plan.",
                field="installation",
            )
        if inst.state != _I.ACTIVE:
            raise PortalError(
                f"The installation is {inst.get_state_display().lower()}: it cannot record use.",
                field="installation",
                code="not_active",
            )
        product = inst.plan.product
        price = billing_usage_price(account, product)
        if price is None:
            raise PortalError(
                f"{app.name} has no usage price in {account.currency}.", field="installation"
            )
        _roll_month(inst, account_today(account, now))
        amounts = [
            (price.amount * quantity).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)
            for _, quantity, _ in fresh
        ]
        total = sum(amounts, Decimal(0))
        if inst.usage_cap is not None and inst.usage_amount + total > inst.usage_cap:
            left = inst.usage_cap - inst.usage_amount
            raise PortalError(
                f"The customer's monthly cap of {Money(inst.usage_cap, price.currency)} is reached: "
                f"{Money(left, price.currency)} is left this month, this use costs "
                f"{Money(total, price.currency)}.",
                field="quantity",
                code="usage_cap_reached",
            )
        records = billing.usage_record_batch(
            actor=None,
            account=account,
            product=product,
            entries=[
                (
                    quantity,
                    "app:" + hashlib.sha256(f"{inst.pk}:{key}".encode()).hexdigest()[:40],
                    used_on,
                )
                for key, quantity, used_on in fresh
            ],
            now=now,
        )
        created = AppUsage.objects.bulk_create(
            [
                AppUsage(
                    installation=inst,
                    idempotency_key=key,
                    quantity=quantity,
                    amount=amount,
                    used_on=record.used_on,
                    record=record,
                    created_at=now,
                )
                for (key, quantity, _), amount, (record, _) in zip(
                    fresh, amounts, records, strict=True
                )
            ]
        )
        before = inst.cap_alerted
        inst.usage_units += sum(quantity for _, quantity, _ in fresh)
        inst.usage_amount += total
        inst.cap_alerted = max(before, _alert_level(inst))
        inst.save(update_fields=["usage_month", "usage_units", "usage_amount", "cap_alerted"])
        if inst.cap_alerted > before:
            outbox.enqueue(tasks.send_cap_alert, inst.pk, inst.cap_alerted, str(inst.usage_month))
    made = {usage.idempotency_key: usage for usage in created}
    return [
        UsageResult(made[key], True) if key in made else UsageResult(done[key], False)
        for key, _, _ in wanted
    ]


# --- trials ------------------------------------------------------------------------------


def _trial_mail_due(trial_end: date, today: date) -> int:
    """Which trial mail is due on `today`: 2 from the last day, 1 from three days before."""
    last_day = trial_end - timedelta(days=1)
    return 2 if today >= last_day else 1 if today >= last_day - timedelta(days=3) else 0


def trials_remind(*, now=None) -> int:
    """Mail each trial three days before its last day and on it: the first paid cycle
    after a trial is not refundable (onecloud §4). Each mail once; safe to run twice.
    Only trials with a mail due are locked: one query when none is."""
    now = now or timezone.now()
    sent = 0
    # The latest local date is a day ahead of UTC's: no mail is due before these.
    latest = now.date() + timedelta(days=1)
    candidates = Installation.objects.filter(
        Q(trial_mails=0, trial_end__lte=latest + timedelta(days=4))
        | Q(trial_mails=1, trial_end__lte=latest + timedelta(days=1)),
        state=_I.TRIALING,
    ).values_list("pk", "account_id", "trial_end", "trial_mails", "account__timezone")
    for pk, account_id, trial_end, mails, zone in candidates:
        today = timezone.localtime(now, ZoneInfo(zone)).date()
        if _trial_mail_due(trial_end, today) <= mails:
            continue
        with transaction.atomic():
            lock_account(account_id)
            inst = lock_installation(pk)
            if inst.state != _I.TRIALING or inst.trial_end is None:
                continue
            last_day = inst.trial_end - timedelta(days=1)
            due = _trial_mail_due(inst.trial_end, account_today(inst.account, now))
            if due <= inst.trial_mails:
                continue
            first = inst.trial_mails == 0
            inst.trial_mails = due
            inst.save(update_fields=["trial_mails"])
            audit_record(
                actor=None,
                action="installation.trial_reminded",
                target=inst,
                account=inst.account,
                changes={"mail": due},
            )
            outbox.enqueue(tasks.send_trial_reminder, inst.pk, due)
            if first:
                webhook_emit(
                    app=inst.app,
                    installation=inst,
                    event=WebhookDelivery.Event.TRIAL_ENDING,
                    data={"last_day": last_day.isoformat()},
                )
            sent += 1
    return sent


# --- webhooks ----------------------------------------------------------------------------


def installation_payload(inst: Installation | None) -> dict | None:
    if inst is None:
        return None
    return {
        "id": inst.pk,
        "account": inst.account_id,
        "state": inst.state,
        "plan": inst.plan.code,
        "pending_plan": inst.pending_plan.code if inst.pending_plan_id else None,
        "scopes": inst.scopes,
        "trial_end": inst.trial_end.isoformat() if inst.trial_end else None,
    }


def webhook_emit(
    *, app: App, installation: Installation | None, event: str, data: dict | None = None
) -> WebhookDelivery | None:
    """Queue an event for the app's endpoint, sent after commit: a transaction that rolls
    back sends nothing. Apps without an endpoint get nothing."""
    if not app.webhook_url:
        return None
    event_id = f"evt_{secrets.token_hex(12)}"
    delivery = WebhookDelivery.objects.create(
        app=app,
        installation=installation,
        event_id=event_id,
        event=event,
        url=app.webhook_url,
        payload={
            "id": event_id,
            "type": event,
            "created": int(timezone.now().timestamp()),
            "app": app.slug,
            "installation": installation_payload(installation),
            "data": data or {},
        },
    )
    outbox.enqueue(tasks.deliver_webhook, delivery.pk)
    return delivery


def webhook_replay(*, actor, delivery: WebhookDelivery) -> WebhookDelivery:
    """Staff send a delivery again (the same event id: the developer can tell)."""
    require_staff(actor, "marketplace.change_webhookdelivery")
    with transaction.atomic():
        delivery = WebhookDelivery.objects.select_for_update().get(pk=delivery.pk)
        delivery.status = WebhookDelivery.Status.PENDING
        delivery.attempts = 0
        delivery.save(update_fields=["status", "attempts"])
        audit_record(
            actor=actor,
            action="webhook.replayed",
            target=delivery,
            changes={"event": delivery.event_id},
        )
        outbox.enqueue(tasks.deliver_webhook, delivery.pk)
    return delivery


# --- earnings ------------------------------------------------------------------------------


def earning_record(*, line: OrderLine, plan: Plan, now) -> Earning | None:
    """The developer's share of a paid app line, held until the line's refund window has
    passed (onecloud §4: 3 days, or the developer's own)."""
    developer = plan.app.developer
    gross = line.amount
    net = (gross * developer.revenue_share).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)
    paid_on = account_today(line.order.account, line.order.paid_at or now)
    days = line.refund_days if line.refund_days is not None else APP_REFUND_DAYS
    try:
        with transaction.atomic():
            earning = Earning.objects.create(
                developer=developer,
                app=plan.app,
                line=line,
                currency=line.order.currency,
                gross=gross,
                fee=gross - net,
                net=net,
                available_on=paid_on + timedelta(days=days + 1),
                earned_on=paid_on,
                created_at=now,
            )
    except IntegrityError:
        return None  # recorded already
    audit_record(
        actor=None,
        action="earning.recorded",
        target=earning,
        account=line.order.account,
        changes={"gross": str(gross), "net": str(net), "available_on": str(earning.available_on)},
    )
    return earning


def earnings_release(*, now=None) -> int:
    """Held shares whose refund window has passed, with no claim open about their line,
    become available to pay out."""
    now = now or timezone.now()
    held = list(
        Earning.objects.filter(
            status=Earning.Status.HELD, available_on__lte=now.date()
        ).values_list("pk", "line_id")
    )
    blocked = lines_held([line for _, line in held])
    ids = [pk for pk, line in held if line not in blocked]
    released = 0
    for earning in Earning.objects.filter(pk__in=ids, status=Earning.Status.HELD):
        with transaction.atomic():
            if Earning.objects.filter(pk=earning.pk, status=Earning.Status.HELD).update(
                status=Earning.Status.AVAILABLE
            ):
                released += 1
                audit_record(
                    actor=None,
                    action="earning.released",
                    target=earning,
                    changes={"status": ["held", "available"]},
                )
    return released


def developer_payout_record(
    *, actor, developer: Developer, month: date, currency: str, reference: str, now=None
) -> DeveloperPayout:
    """Staff pay a developer its available earnings up to the end of `month`, with the
    bank reference; those earnings are paid, once."""
    now = now or timezone.now()
    require_staff(actor, "marketplace.add_developerpayout")
    if currency not in CURRENCIES:
        raise PortalError(f"“{currency}” is not a currency we bill in.", field="currency")
    reference = (reference or "").strip()
    if not reference:
        raise PortalError("Give the payout's bank reference.", field="reference")
    month = month.replace(day=1)
    end = (month + timedelta(days=32)).replace(day=1)
    with transaction.atomic():
        developer = Developer.objects.select_for_update().get(pk=developer.pk)
        rows = list(
            Earning.objects.select_for_update().filter(
                developer=developer,
                currency=currency,
                status=Earning.Status.AVAILABLE,
                earned_on__lt=end,
            )
        )
        total = sum((row.net for row in rows), Decimal(0))
        if not rows:
            raise PortalError(
                f"{developer.name} has nothing available in {currency} to pay for {month:%B %Y}.",
                field="month",
            )
        if total < 0:
            raise PortalError(
                f"Refunds exceed {developer.name}'s earnings in {currency}: nothing to pay.",
                field="month",
            )
        try:
            with transaction.atomic():
                payout = DeveloperPayout.objects.create(
                    developer=developer,
                    month=month,
                    currency=currency,
                    amount=total,
                    reference=reference[:120],
                    paid_at=now,
                    recorded_by=actor if actor is not None and actor.pk else None,
                )
        except IntegrityError:
            raise PortalError(
                f"{developer.name}'s {month:%B %Y} payout in {currency} is recorded already.",
                field="month",
            ) from None
        # Exactly the rows summed (locked above): one released meanwhile waits for the next.
        paid = Earning.objects.filter(
            pk__in=[row.pk for row in rows], status=Earning.Status.AVAILABLE
        ).update(status=Earning.Status.PAID, payout=payout)
        if paid != len(rows):
            raise PortalError("The earnings changed while paying: try again.", field="month")
        audit_record(
            actor=actor,
            action="developer.paid",
            target=payout,
            changes={"amount": str(total), "currency": currency, "reference": reference},
        )
    return payout
