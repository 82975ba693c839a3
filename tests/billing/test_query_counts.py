"""The Billing page and its API for an account that grows to 200 subscriptions and
2,000 payments (with add-ons, licences, credit packs and usage): the query count
of each request must not move."""

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from billing.models import CreditPackBalance, Order, OrderLine
from billing.selectors import PAGE_ROWS
from tests.billing.scale import PAYMENTS, SUBSCRIPTIONS, catalogue, grow
from tests.factories import AccountFactory, owner_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def prices():
    return catalogue()


@pytest.fixture
def account(prices):
    account = AccountFactory(name="Bench Corp", seats_paid=10, timezone="UTC")
    grow(account, prices, subscriptions=2, payments=3)
    return account


# Bounds as measured: the session, the user and the memberships (3), then the page's
# own reads. Raise one only with a reason. The Billing page was one page of 29 queries
# before it became an overview and sub-pages: each sub-page reads only its own part.
MAX_QUERIES = {"page": 29, "api": 7}


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/settings/billing/", "page"),
        ("/settings/billing/plan-and-seats/", "page"),
        ("/settings/billing/add-ons/", "page"),
        ("/settings/billing/invoices/", "page"),
        ("/settings/billing/credits/", "page"),
        ("/settings/billing/refunds/", "page"),
        ("/settings/billing/orders/{order}/", "page"),
        ("/api/v1/accounts/{id}/billing/", "api"),
        ("/api/v1/accounts/{id}/orders/", "api"),
        ("/api/v1/accounts/{id}/payments/", "api"),
        ("/api/v1/accounts/{id}/ledger/", "api"),
        ("/api/v1/accounts/{id}/credits/", "api"),
        ("/api/v1/accounts/{id}/usage/", "api"),
        ("/api/v1/accounts/{id}/licences/", "api"),
    ],
)
def test_billing_reads_use_the_same_queries_at_2000_payments(
    account, prices, path, kind, django_assert_max_num_queries, django_assert_num_queries
):
    client = Client() if kind == "page" else APIClient()
    client.force_login(owner_of(account))
    client.get("/")  # settle the session first
    newest = Order.objects.filter(account=account).order_by("-created_at", "-id").first()
    path = path.format(id=account.pk, order=newest.pk)
    with django_assert_max_num_queries(MAX_QUERIES[kind]) as small:
        first = client.get(path)
    assert first.status_code == 200, first.content[:300]
    grow(account, prices, subscriptions=SUBSCRIPTIONS, payments=PAYMENTS)
    with django_assert_num_queries(len(small)):
        second = client.get(path)
    assert second.status_code == 200
    if path.endswith("/payments/"):
        assert second.json()["count"] == PAYMENTS + 3
    packs = OrderLine.objects.filter(order__account=account, kind="credit_pack").count()
    if kind == "api" and path.endswith("/credits/"):
        assert packs > 600 and second.json()[0]["left"] == packs * 990
    if path.endswith("/invoices/"):
        assert len(second.context["payments"]) == PAGE_ROWS  # and a page link to the rest
        assert second.text.count("BANK-") >= PAGE_ROWS
        assert len(second.context["orders"]) == PAGE_ROWS
        assert second.context["payments"].has_next and not second.context["payments"].has_previous
        assert "?payments=2" in second.text and "?orders=2" in second.text
    if kind == "page" and path.endswith("/credits/"):
        # The page reads the stored balance, which is the sum over the packs.
        stored = CreditPackBalance.objects.get(account=account)
        assert (stored.units, stored.used) == (packs * 1000, packs * 10)
        assert f"{packs * 990:,}" in second.text
    if path == "/settings/billing/":
        # Every add-on renewing that day is in the next charge, summed without a model each.
        renewing = (SUBSCRIPTIONS + 2) // 2
        charge = second.context["next_charge"]
        assert charge.renewals == renewing
        assert charge.what == [
            f"Feature \N{MULTIPLICATION SIGN} {renewing:,}"
        ]  # named once, with its count
        assert charge.total.amount >= renewing * prices["feature"].amount
        assert f"For Feature \N{MULTIPLICATION SIGN} {renewing:,}." in second.text
    if path.endswith("/add-ons/"):
        assert len(second.context["addons"]) == PAGE_ROWS and "?page=2" in second.text


def test_usage_this_month_is_summed_not_listed(account, prices):
    from billing.selectors import usage_summary

    rows = usage_summary(account=account, today=timezone.localdate())
    assert rows[0].quantity == 300 and rows[0].product == prices["sms"].product


def test_the_invoices_page_pages_its_lists_newest_first_without_counting_them(account, prices):
    grow(account, prices, subscriptions=0, payments=57)  # 60 payments: pages of 25, 25, 10
    client = Client()
    client.force_login(owner_of(account))
    client.get("/")

    def page(query: str):
        answer = client.get(f"/settings/billing/invoices/?{query}")
        assert answer.status_code == 200
        return answer.context["payments"], answer.text

    first, text = page("")
    assert (len(first), first.number, first.has_previous, first.has_next) == (25, 1, False, True)
    assert (
        "?payments=2" in text
        and "Page 1</span>" in text
        and "Newer" not in text.split('aria-label="Payments pages"')[1].split("</nav>")[0]
    )
    third, _ = page("payments=3")
    assert (len(third), third.has_previous, third.has_next) == (10, True, False)
    newest_of_third = third.object_list[0]
    assert newest_of_third not in first.object_list  # the pages do not overlap
    past, _ = page("payments=99")  # past the end: the last page
    assert (past.number, len(past)) == (3, 10)
    assert page("payments=abc")[0].number == 1 and page("payments=-4")[0].number == 1
    # The page reads one row more than it shows: no COUNT of the list.
    with CaptureQueriesContext(connection) as queries:
        page("payments=2")
    assert not any(
        "COUNT(*)" in query["sql"] and "billing_payment" in query["sql"]
        for query in queries.captured_queries
    )
