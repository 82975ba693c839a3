"""The marketplace's reads, shaped for the pages and the API."""

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.db.models import Prefetch, Q, Sum
from django.http import Http404

from accounts.converters import parse_id
from accounts.models import Account
from billing.hooks import REFUND_ADVISOR
from billing.models import Licence, OrderLine, Product, Subscription
from billing.money import Money
from billing.selectors import (
    account_edition,
    entitlement_refusal,
    holds_product,
    quota_addons_active,
    subscription_current,
)

from .models import App, AppUsage, Developer, Earning, Installation, Plan

CATEGORIES = App.Category.choices
PRICING_MODELS = Plan.Model.choices


def _active_plans():
    return Prefetch(
        "plans",
        queryset=Plan.objects.filter(is_active=True).order_by("position", "pk"),
        to_attr="active_plans",
    )


def app_list(*, q: str = "", category: str = "", pricing_model: str = ""):
    """Published apps, searched by words in their name, summary, description or developer."""
    apps = (
        App.objects.filter(status=App.Status.PUBLISHED)
        .select_related("developer")
        .prefetch_related(_active_plans())
    )
    if category:
        apps = apps.filter(category=category)
    if pricing_model:
        apps = apps.filter(plans__pricing_model=pricing_model, plans__is_active=True)
    apps = apps.filter(app_search_q(q))
    return apps.distinct().order_by("name", "pk")


def app_get(*, slug: str, account: Account | None = None) -> App:
    """A published app; or one delisted since, for an account that still has it."""
    app = (
        App.objects.filter(slug=slug)
        .select_related("developer")
        .prefetch_related(_active_plans())
        .first()
    )
    if app is None or (
        app.status != App.Status.PUBLISHED
        and not (
            account is not None
            and Installation.objects.filter(account=account, app=app)
            .exclude(state=Installation.State.UNINSTALLED)
            .exists()
        )
    ):
        raise Http404("No such app.")
    return app


def plan_licence_refusal(account: Account, plan: Plan) -> str | None:
    """Why the plan's app cannot work without a licence it needs (1CRM terms: the WordPress
    portal works only with Professional or Enterprise and its own licence), or None."""
    required = plan.requires_product
    if required is None:
        return None
    why = entitlement_refusal(account, required)
    if why is None and not holds_product(account, required):
        why = f"{plan.app.name} works only with a {required.name} licence."
    return why


def installation_works(inst: Installation) -> str | None:
    """Why a live installation does not work now (a licence or an edition it needs has
    gone), or None when it works; a trial or an active one only."""
    if not inst.is_live:
        return f"The installation is {inst.get_state_display().lower()}."
    return plan_licence_refusal(inst.account, inst.plan)


def app_find(ref: str) -> App | None:
    """A published app by its slug, or by its id."""
    apps = App.objects.filter(status=App.Status.PUBLISHED).select_related("developer")
    app = apps.filter(slug=ref).first()
    if app is None and (pk := parse_id(ref)) is not None:
        app = apps.filter(pk=pk).first()
    return app


def plan_find(app: App, ref: str | None) -> Plan | None:
    """An active plan of the app by its code or id; its first plan if none is named."""
    plans = app.plans.filter(is_active=True).order_by("position", "pk")
    if not ref:
        return plans.first()
    plan = plans.filter(code=ref).first()
    if plan is None and (pk := parse_id(ref)) is not None:
        plan = plans.filter(pk=pk).first()
    return plan


def primary_plan(app: App) -> Plan | None:
    plans = getattr(app, "active_plans", None)
    if plans is None:
        plans = list(app.plans.filter(is_active=True).order_by("position", "pk"))
    return plans[0] if plans else None


def plan_terms(plan: Plan) -> str:
    """The plan's refund terms in plain words, from the policy engine for its kind."""
    if plan.pricing_model == Plan.Model.FREE:
        return "Free: nothing is charged."
    terms = REFUND_ADVISOR.get("terms")
    return (
        terms(plan.kind, refund_days=plan.refund_days, trial_days=plan.trial_days) if terms else ""
    )


def refund_window_days(plan: Plan) -> int | None:
    """Days after a payment in which the policy can refund it (onecloud §4): a first
    subscription payment 3 (or the developer's own), none after a free trial; a lifetime
    licence's defect and a usage charge's billing error 3. None: nothing paid here."""
    if plan.pricing_model == Plan.Model.SUBSCRIPTION:
        if plan.trial_days:
            return 0
        return plan.refund_days if plan.refund_days is not None else 3
    if plan.pricing_model in (Plan.Model.ONE_TIME, Plan.Model.USAGE):
        return 3
    return None


def plan_price(plan: Plan) -> str:
    money = Money(plan.amount, plan.currency)
    if plan.pricing_model == Plan.Model.FREE:
        return "Free"
    if plan.pricing_model == Plan.Model.EXTERNAL:
        return f"Paid to {plan.app.developer.name}"
    if plan.pricing_model == Plan.Model.ONE_TIME:
        return f"{money} once"
    if plan.pricing_model == Plan.Model.USAGE:
        return f"{money} per {plan.unit_name or 'unit'}"
    per = " per seat" if plan.scheme == Plan.Scheme.PER_SEAT else ""
    every = {"month": "a month", "year": "a year"}[plan.interval]
    trial = f", {plan.trial_days}-day free trial" if plan.trial_days else ""
    return f"{money}{per} {every}{trial}"


def installation_list(*, account: Account):
    return (
        Installation.objects.filter(account=account)
        .exclude(state=Installation.State.UNINSTALLED)
        .select_related("app__developer", "plan", "pending_plan", "subscription")
        .order_by("app__name", "pk")
    )


def installation_get(*, account: Account, installation_id) -> Installation:
    inst = (
        Installation.objects.filter(account=account, pk=installation_id)
        .select_related("app__developer", "plan", "pending_plan", "subscription")
        .first()
    )
    if inst is None:
        raise Http404("No such installation.")
    return inst


def installations_by_app(*, account: Account, app_ids) -> dict[int, Installation]:
    return {
        inst.app_id: inst
        for inst in Installation.objects.filter(
            account=account, app_id__in=list(app_ids)
        ).select_related("plan", "subscription")
    }


@dataclass(frozen=True)
class UsageView:
    month: date | None
    units: int
    amount: Money
    cap: Money | None
    recent: list


def usage_view(inst: Installation) -> UsageView | None:
    if inst.plan.pricing_model != Plan.Model.USAGE:
        return None
    currency = inst.plan.currency
    return UsageView(
        month=inst.usage_month,
        units=inst.usage_units,
        amount=Money(inst.usage_amount, currency),
        cap=Money(inst.usage_cap, currency) if inst.usage_cap is not None else None,
        recent=list(AppUsage.objects.filter(installation=inst).order_by("-created_at", "-pk")[:10]),
    )


@dataclass(frozen=True)
class Charge:
    line: OrderLine
    decision: object | None  # what a request about it gets today (refunds' engine)


def app_charges(inst: Installation, *, today: date | None = None) -> list[Charge]:
    """The billed lines of the installation's app (each charge is its own order line),
    newest first, each with what the policy gives today: a usage charge for a billing
    error (onecloud §4), the rest as asked."""
    products = [plan.product_id for plan in inst.app.plans.all() if plan.product_id]
    if not products:
        return []
    lines = list(
        OrderLine.objects.filter(order__account=inst.account, product_id__in=products)
        .exclude(order__status="cancelled")
        .select_related("order", "subscription")
        .order_by("-order__created_at", "-pk")[:24]
    )
    advise = REFUND_ADVISOR.get("outlook")
    paid = [line for line in lines if line.order.status == "paid" and line.refundable_left > 0]
    decided = {}
    if advise is not None and paid and today is not None:
        usage = [line for line in paid if line.kind == Product.Kind.APP_USAGE]
        other = [line for line in paid if line.kind != Product.Kind.APP_USAGE]
        if usage:
            decided |= advise(inst.account, usage, today, reason="billing_error")
        if other:
            decided |= advise(inst.account, other, today)
    return [Charge(line, decided.get(line.pk)) for line in lines]


def entitlements(*, account: Account) -> dict:
    """What the account may use now, for the CRM to read: its plan and features, quotas,
    add-ons, plugins and licences that work, and installed apps with their scopes."""
    plan = subscription_current(account=account)
    live_plan = (
        plan
        if plan is not None
        and plan.status
        in (
            Subscription.Status.TRIALING,
            Subscription.Status.ACTIVE,
        )
        else None
    )
    addons = (
        Subscription.objects.addons()
        .filter(
            account=account, status__in=[Subscription.Status.TRIALING, Subscription.Status.ACTIVE]
        )
        .exclude(price__product__kind=Product.Kind.APP_SUBSCRIPTION)
        .select_related("price__product")
    )
    licences = Licence.objects.filter(account=account, status=Licence.Status.ACTIVE).select_related(
        "product__requires_product"
    )
    plugins, stopped = [], []
    for licence in licences:
        if licence.product.kind == Product.Kind.APP_ONE_TIME:
            continue
        why = entitlement_refusal(account, licence.product)
        row = {
            "product": licence.product.code,
            "name": licence.product.name,
            "users": licence.users_covered,
        }
        if why:
            stopped.append({**row, "reason": why})
        else:
            plugins.append(row)
    apps = [
        {
            "app": inst.app.slug,
            "name": inst.app.name,
            "state": inst.state,
            "works": (why := installation_works(inst)) is None,
            "reason": why,
            "plan": inst.plan.code,
            "scopes": inst.scopes,
            "trial_end": inst.trial_end,  # the first day no longer free
            "trial_last_day": inst.trial_end - timedelta(days=1) if inst.trial_end else None,
        }
        for inst in Installation.objects.filter(
            account=account, state__in=Installation.LIVE_STATES
        ).select_related("app", "plan__requires_product", "account")
    ]
    return {
        "account": account.pk,
        "status": account.status,
        "edition": account_edition(account) or None,
        "plan": (
            {
                "product": live_plan.price.product.code,
                "name": live_plan.price.product.name,
                "status": live_plan.status,
                "seats": live_plan.quantity,
                "period_end": live_plan.current_period_end,
            }
            if live_plan
            else None
        ),
        "seats_paid": account.seats_paid,
        "add_ons": [
            {
                "product": s.price.product.code,
                "name": s.price.product.name,
                "kind": s.price.product.kind,
            }
            for s in addons
        ],
        "quotas": [
            {"product": line.product.code, "name": line.product.name, "quantity": line.quantity}
            for line in quota_addons_active(account=account)
        ],
        "plugins": plugins,
        "stopped": stopped,
        "apps": apps,
    }


@dataclass(frozen=True)
class StatementRow:
    currency: str
    gross: Decimal
    fee: Decimal
    net: Decimal
    held: Decimal
    available: Decimal
    paid: Decimal


def developer_statement(*, developer: Developer, month: date) -> list[StatementRow]:
    """One month's earnings of a developer, per currency."""
    start = month.replace(day=1)
    end = (start + timedelta(days=32)).replace(day=1)
    rows = Earning.objects.filter(developer=developer, earned_on__gte=start, earned_on__lt=end)
    out = []
    for currency in sorted(set(rows.values_list("currency", flat=True))):
        mine = rows.filter(currency=currency)
        total = mine.aggregate(gross=Sum("gross"), fee=Sum("fee"), net=Sum("net"))

        def net(status, mine=mine):
            return mine.filter(status=status).aggregate(v=Sum("net"))["v"] or Decimal(0)

        out.append(
            StatementRow(
                currency=currency,
                gross=total["gross"],
                fee=total["fee"],
                net=total["net"],
                held=net(Earning.Status.HELD),
                available=net(Earning.Status.AVAILABLE),
                paid=net(Earning.Status.PAID),
            )
        )
    return out


def app_search_q(q: str) -> Q:
    query = Q()
    for word in (q or "").lower().split()[:8]:
        query &= Q(search_text__contains=word)
    return query
