"""The console's refunds report (issue 15): its figures on a small known set, from a
fixed number of queries, drawn by Chart.js served from static."""

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.staticfiles import finders
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from refunds import services
from refunds.models import RefundRequest
from tests.accounts.test_hardening import staff_client
from tests.refunds.conftest import MONDAY
from tests.refunds.test_console import lines_of, submit

pytestmark = pytest.mark.django_db

REPORT = "admin:refunds_report"


@pytest.fixture(autouse=True)
def _vendor(settings):
    settings.VENDOR_TIMEZONE = "America/New_York"


def known_set(paid_order, reviewer):
    """February: one request, never acknowledged, breached. March: one approved in full
    on time; one decided ten days late, the credits cut to 60 and the plugin denied
    (both against the engine, which refunded them in full)."""
    account, order = paid_order(when=datetime(2026, 2, 23, 15, tzinfo=UTC))
    february = submit(account, order, now=datetime(2026, 2, 24, 15, tzinfo=UTC))
    RefundRequest.objects.filter(pk=february.pk).update(breached=["acknowledge"])
    account, order = paid_order()
    full = submit(account, order)
    for line in lines_of(full):
        services.refund_line_decide(actor=reviewer, line=line, approve=True, now=MONDAY)
    services.refund_request_decide(actor=reviewer, request=full, now=MONDAY)
    account, order = paid_order()
    cut = submit(account, order)
    late = MONDAY + timedelta(days=10)
    credits, plugin = lines_of(cut)
    services.refund_line_decide(actor=reviewer, line=credits, approve=True, amount="60", now=late)
    services.refund_line_decide(
        actor=reviewer, line=plugin, approve=False, reason="Used.", now=late
    )
    services.refund_request_decide(actor=reviewer, request=cut, now=late)


def report_page(client):
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse(REPORT))
    assert response.status_code == 200
    page = response.content.decode()
    data = json.loads(
        re.search(
            r'<script id="refunds-report-data" type="application/json">(.*?)</script>',
            page,
            flags=re.S,
        ).group(1)
    )
    return page, data, len(queries)


def test_the_report_on_a_known_set(client, paid_order):
    reviewer = staff_client(client, group="Billing reviewer")
    known_set(paid_order, reviewer)
    page, data, queries = report_page(client)
    assert data["months"] == ["2026-02", "2026-03"]
    assert data["requests"] == [1, 2]
    assert data["breached"] == [1, 0] and data["breach_rate"] == [100.0, 0]
    assert data["ack"] == {"on_time": [0, 1], "late": [0, 1]}
    assert data["decide"] == {"on_time": [0, 1], "late": [0, 1]}
    assert data["amounts"] == {
        "USD": {"asked": ["149.00", "298.00"], "approved": ["0.00", "209.00"]}
    }
    assert data["kinds"] == {
        "labels": ["Credit pack", "Standalone plugin"],
        "lines": [3, 3],
        "approved": [2, 1],
        "denied": [0, 1],
    }
    assert data["reasons"] == {"labels": ["No longer needed"], "requests": [3]}
    assert data["totals"] == {
        "requests": 3,
        "breached": 1,
        "breach_rate": 33.3,
        "engine_decided": 4,
        "overridden": 2,
        "override_rate": 50.0,
        "review": 0,
    }
    assert 'data-testid="month-2026-03"><td>2026-03</td><td>2</td>' in page
    # The charts: the vendored Chart.js and the page's script, from static; no inline code.
    assert "/static/vendor/chartjs/chart.umd.min.js" in page
    assert "/static/js/refunds_report.js" in page
    assert finders.find("vendor/chartjs/chart.umd.min.js")
    assert finders.find("vendor/chartjs/LICENSE.md")
    assert re.findall(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>", page) == []

    # The same queries with more rows.
    known_set(paid_order, reviewer)
    _, data, more = report_page(client)
    assert data["requests"] == [2, 4]
    assert queries == more == 11


def test_the_report_is_for_staff_who_may_see_refunds(client):
    staff_client(client, group="Support agent")
    assert client.get(reverse(REPORT)).status_code == 403
