"""The Marketplace pages: browse and search apps, an app's page with its plans and refund
terms, and what the account has installed (install, change, cancel, uninstall)."""

import re

from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from accounts.errors import NotAllowed, PortalError
from accounts.views import member_view
from billing.selectors import account_today
from core import csp

from . import selectors, services
from .models import Plan


@member_view()
def marketplace_home(request):
    account = request.portal.account
    q = request.GET.get("q", "")[:200]
    category = request.GET.get("category", "")
    model = request.GET.get("pricing_model", "")
    category = category if category in dict(selectors.CATEGORIES) else ""
    model = model if model in dict(selectors.PRICING_MODELS) else ""
    apps = list(selectors.app_list(q=q, category=category, pricing_model=model)[:200])
    return render(
        request,
        "marketplace/home.html",
        {
            "account": account,
            "apps": [(app, selectors.primary_plan(app)) for app in apps],
            "installed": list(selectors.installation_list(account=account)),
            "q": q,
            "category": category,
            "pricing_model": model,
            "categories": selectors.CATEGORIES,
            "models": selectors.PRICING_MODELS,
        },
    )


@member_view()
def marketplace_app(request, slug: str):
    account = request.portal.account
    app = selectors.app_get(slug=slug, account=request.portal.account)
    inst = selectors.installations_by_app(account=account, app_ids=[app.pk]).get(app.pk)
    plans = [
        (
            plan,
            selectors.plan_price(plan),
            selectors.plan_terms(plan),
            services.plan_refusal(account, plan),
        )
        for plan in app.active_plans
    ]
    live = inst is not None and inst.state not in ("cancelled", "uninstalled")
    offer = (
        services.refund_offer(inst) if inst is not None and inst.state != "uninstalled" else None
    )
    response = render(
        request,
        "marketplace/app.html",
        {
            "account": account,
            "app": app,
            "plans": plans,
            "inst": inst if inst is not None and inst.state != "uninstalled" else None,
            "live": live,
            "usage": selectors.usage_view(inst) if inst is not None else None,
            "not_working": (
                selectors.installation_works(inst) if inst is not None and inst.is_live else None
            ),
            "charges": (
                selectors.app_charges(inst, today=account_today(account))
                if inst is not None
                else []
            ),
            "offer": offer,
            "can_install": request.portal.membership.can_see_billing,
            "switchable": [
                plan
                for plan in app.active_plans
                if inst is not None
                and plan.pricing_model == Plan.Model.SUBSCRIPTION
                and plan.pk != inst.plan_id
            ],
        },
    )
    # Installing an external app posts here and is redirected to its developer: the page's
    # form-action must allow that origin, or the browser stops the redirect.
    return csp.allow(
        response, {"form-action": [csp.origin(plan.external_url) for plan in app.active_plans]}
    )


def _act(request, slug, action):
    """Run a change; its refusal becomes a message on the app's page."""
    try:
        result = action()
    except (PortalError, NotAllowed) as exc:
        messages.error(request, exc.message)
        return redirect("marketplace_app", slug=slug)
    return result


@require_POST
@member_view()
def marketplace_install(request, slug: str):
    account = request.portal.account
    app = selectors.app_get(slug=slug, account=request.portal.account)
    plan = next((p for p in app.active_plans if p.code == request.POST.get("plan")), None)
    if plan is None:
        messages.error(request, "Choose one of the app's plans.")
        return redirect("marketplace_app", slug=slug)
    quantity = request.POST.get("quantity") or "1"

    def install():
        if not re.fullmatch(r"[0-9]{1,5}", quantity):
            raise PortalError("Give a whole number of seats, 1 to 10,000.", field="quantity")
        outcome = services.installation_install(
            actor=request.user,
            account=account,
            app=app,
            plan=plan,
            usage_cap=request.POST.get("usage_cap") or None,
            quantity=int(quantity),
        )
        messages.success(request, outcome.message)
        if outcome.redirect_url:
            return redirect(outcome.redirect_url)
        if outcome.order is not None and outcome.order.status != "paid":
            return redirect(reverse("settings_billing") + "#orders")
        return redirect("marketplace_app", slug=slug)

    return _act(request, slug, install)


def _installation(request, slug):
    app = selectors.app_get(slug=slug, account=request.portal.account)
    inst = selectors.installations_by_app(account=request.portal.account, app_ids=[app.pk]).get(
        app.pk
    )
    if inst is None:
        raise PortalError(f"{app.name} is not installed.")
    return inst


@require_POST
@member_view()
def marketplace_cancel(request, slug: str):
    uninstall = request.POST.get("uninstall") == "1"

    def cancel():
        if request.POST.get("confirm") != "1":
            raise PortalError("Tick the box to confirm.", field="confirm")
        outcome = services.installation_cancel(
            actor=request.user, installation=_installation(request, slug), uninstall=uninstall
        )
        messages.success(request, outcome.message)
        if outcome.refund and outcome.refund["outcome"] in ("refund", "review"):
            messages.info(
                request,
                f"{outcome.refund['explanation']} Ask for it from the refund form: it is prefilled.",
            )
        return redirect("marketplace_app", slug=slug)

    return _act(request, slug, cancel)


@require_POST
@member_view()
def marketplace_change(request, slug: str):
    def change():
        inst = _installation(request, slug)
        if "usage_cap" in request.POST:
            inst = services.installation_set_cap(
                actor=request.user,
                installation=inst,
                usage_cap=request.POST.get("usage_cap") or None,
            )
            messages.success(
                request,
                "The monthly cap is saved."
                if inst.usage_cap is not None
                else "The monthly cap is removed: use is no longer limited.",
            )
        elif request.POST.get("plan"):
            plan = Plan.objects.filter(
                app=inst.app, code=request.POST["plan"], is_active=True
            ).first()
            if plan is None:
                raise PortalError("Choose one of the app's plans.", field="plan")
            messages.success(
                request,
                services.installation_change_plan(
                    actor=request.user, installation=inst, plan=plan
                ).message,
            )
        return redirect("marketplace_app", slug=slug)

    return _act(request, slug, change)
