"""The Content-Security-Policy of every customer page: a nonce for scripts and styles, never
'unsafe-inline'; and what single pages add for themselves."""

import io
import re

import pytest
from django.core.management import call_command
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from accounts.models import Account, User
from refunds.models import RefundRequest

NOT_CUSTOMER_PAGES = ("admin/", "api/", "stripe/", "anymail/", "healthz")


def policy(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    return {
        name: sources
        for name, *sources in (part.split() for part in header.split(";") if part.strip())
    }


def _plain_routes(patterns, prefix=""):
    """The routes without parameters, as paths."""
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from _plain_routes(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern) and "<" not in route and not route.startswith("^"):
            yield "/" + route


@pytest.fixture
def demo(settings, db):
    settings.DEBUG = True
    for command in (
        "demo_data",
        "demo_billing",
        "demo_refunds",
        "demo_marketplace",
        "demo_support",
    ):
        call_command(command, stdout=io.StringIO())
    settings.DEBUG = False


@pytest.fixture
def owner_client(client, demo):
    client.force_login(User.objects.get(email="owner@acme.example"))
    return client


def _customer_pages():
    acme = Account.objects.get(name="Acme Corporation")
    refunds = RefundRequest.objects.filter(account=acme).order_by("pk")
    credited = refunds.get(state="credited")
    paths = [
        p
        for p in _plain_routes(get_resolver().url_patterns)
        if not p[1:].startswith(NOT_CUSTOMER_PAGES)
    ]
    return [
        *paths,
        *(reverse("refund_request_detail", args=[refund.number]) for refund in refunds),
        reverse("refund_request_new", args=[credited.lines.first().order_line.order_id]),
        reverse("marketplace_app", args=["aurora-assistant"]),
    ]


def test_every_customer_page_has_a_nonce_and_no_unsafe_inline(owner_client):
    from django.test import Client

    checked = []
    pages = [(owner_client, path) for path in _customer_pages()]
    pages += [(Client(), path) for path in _customer_pages()]  # signed out: sign-in, sign-up...
    for client, path in pages:
        response = client.get(path)
        if response.status_code != 200 or not response["Content-Type"].startswith("text/html"):
            continue
        directives = policy(response)
        nonces = [s for s in directives["script-src"] if s.startswith("'nonce-")]
        assert len(nonces) == 1, (path, directives["script-src"])
        assert nonces == [s for s in directives["style-src"] if s.startswith("'nonce-")], path
        nonce = nonces[0].removeprefix("'nonce-").removesuffix("'")
        assert f'nonce="{nonce}"' in response.text, path
        for name in ("script-src", "style-src", "default-src"):
            assert "'unsafe-inline'" not in directives[name], (path, name)
            assert "'unsafe-eval'" not in directives[name], (path, name)
        assert directives["frame-ancestors"] == ["'none'"] and directives["object-src"] == [
            "'none'"
        ]
        assert directives["base-uri"] == ["'self'"] and directives["form-action"][0] == "'self'"
        checked.append(path)
    assert {
        "/",
        "/settings/billing/",
        "/support/",
        "/marketplace/",
        "/accounts/2fa/",
        "/accounts/login/",
        "/accounts/signup/",
    } <= set(checked)
    assert len(checked) >= 25, checked


def test_each_request_has_its_own_nonce(owner_client):
    first, second = (policy(owner_client.get("/"))["script-src"] for _ in range(2))
    assert first != second


def test_the_sign_in_error_and_413_pages_have_the_policy_too(client, db):
    for response in (
        client.get("/accounts/login/"),
        client.get("/no-such-page/"),
        client.post("/accounts/login/", CONTENT_LENGTH=str(2**31), CONTENT_TYPE="text/plain"),
    ):
        assert response.status_code in (200, 404, 413)
        directives = policy(response)
        assert "'unsafe-inline'" not in directives["script-src"] + directives["style-src"]
        assert any(s.startswith("'nonce-") for s in directives["script-src"])


def test_an_external_apps_page_lets_its_install_form_lead_to_the_developer(owner_client):
    from marketplace.models import Plan

    Plan.objects.filter(app__slug="mailchimp-sync").update(
        external_url="https://chimpconnect.example/signup?from=portal"
    )
    external = policy(owner_client.get(reverse("marketplace_app", args=["mailchimp-sync"])))
    assert external["form-action"] == ["'self'", "https://chimpconnect.example"]
    other = policy(owner_client.get(reverse("marketplace_app", args=["aurora-assistant"])))
    assert other["form-action"] == ["'self'"]


def test_stripe_js_is_allowed_on_the_payment_method_page_only(owner_client, settings, monkeypatch):
    from types import SimpleNamespace

    from billing import payment_methods

    settings.BILLING_GATEWAY = "stripe"
    settings.STRIPE_JS_URL = "https://js.stripe.com/v3/"
    settings.STRIPE_API_BASE = ""
    monkeypatch.setattr(
        payment_methods,
        "card_setup_start",
        lambda **kwargs: SimpleNamespace(client_secret="seti_1_secret_x"),
    )
    page = owner_client.get(reverse("billing_payment_method"))
    assert page.status_code == 200 and 'src="https://js.stripe.com/v3/"' in page.text
    directives = policy(page)
    assert directives["script-src"][0] == "'self'"
    assert directives["script-src"][2:] == ["https://js.stripe.com"]
    assert "https://js.stripe.com" in directives["frame-src"]
    assert directives["connect-src"] == ["'self'", "https://api.stripe.com"]
    assert (
        "https://js.stripe.com" not in policy(owner_client.get("/settings/billing/"))["script-src"]
    )


def test_the_api_docs_carry_the_nonce_on_their_inline_code(client, db):
    for name in ("api_docs", "api_redoc"):
        response = client.get(reverse(name))
        assert response.status_code == 200
        directives = policy(response)
        nonce = next(s for s in directives["script-src"] if s.startswith("'nonce-"))[7:-1]
        scripts = re.findall(r"<script(?![^>]*\bsrc=)([^>]*)>", response.text)
        assert scripts and all(f'nonce="{nonce}"' in attrs for attrs in scripts), scripts
        styles = re.findall(r"<style([^>]*)>", response.text)
        assert styles and all(f'nonce="{nonce}"' in attrs for attrs in styles), styles
        assert "fonts.googleapis.com" not in response.text
