"""The refund simulator picks an account, then its orders and lines, with a date picker
(issue 15)."""

import re

import pytest
from django.urls import reverse

from tests.accounts.test_hardening import staff_client

pytestmark = pytest.mark.django_db

URL = "admin:refunds_refundsimulation_changelist"


def test_the_simulator_picks_an_account_then_its_lines(client, paid_order):
    staff_client(client, group="Billing reviewer")
    acme, order = paid_order()
    _other, elsewhere = paid_order()
    first = client.get(reverse(URL)).content.decode()
    assert re.search(r'<select name="account"[^>]*data-autosubmit', first)
    assert 'data-testid="simulate"' not in first and "Run the policy" not in first

    page = client.get(reverse(URL), {"account": acme.pk}).content.decode()
    picker = page.split('data-testid="simulate"', 1)[1]
    assert f'data-testid="order-{order.number}"' in picker
    assert elsewhere.number not in picker
    credits, plugin = order.lines.order_by("pk")
    for line in (credits, plugin):
        assert re.search(rf'<input type="checkbox" name="lines" value="{line.pk}"', picker)
    assert "Credits x 1 (1,000 credits): $100.00</label>" in picker
    assert f"{order.number}, paid March 2, 2026" in picker
    assert re.search(r'<input type="date" name="on" value="\d{4}-\d{2}-\d{2}"', picker)
    assert '<input type="date" name="event"' in picker
    assert f'<input type="hidden" name="account" value="{acme.pk}"' in picker

    query = {"account": acme.pk, "lines": [plugin.pk], "on": "2026-03-03"}
    result = client.get(reverse(URL), {**query, "reason": "no_longer_needed", "policy": "acelle"})
    table = result.content.decode().split('data-testid="decisions"', 1)[1]
    assert table.count("<tr><td>") == 1 and plugin.description in table
    assert credits.description not in table

    foreign = elsewhere.lines.first()
    refused = client.get(
        reverse(URL),
        {**query, "lines": [foreign.pk], "reason": "no_longer_needed", "policy": "acelle"},
    ).content.decode()
    assert f"{foreign.pk} is not a paid line of this account." in refused
    assert 'data-testid="decisions"' not in refused
