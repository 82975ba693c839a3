"""The staff console's support queue and incident review page, and planned maintenance
notices (issue 7)."""

import re
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from django.contrib.auth.models import Group, Permission
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import AuditEvent
from support import services
from support.models import Incident, IncidentMessage, MaintenanceNotice
from tests.accounts.test_hardening import staff_client
from tests.factories import AccountFactory, UserFactory, owner_of
from tests.support.test_incidents import TUESDAY, cloud_account, open_one

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:support_incident_changelist"
# Wednesday 11 March 2026, 10:00 in New York.
WEDNESDAY = datetime(2026, 3, 11, 14, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _vendor(settings):
    settings.VENDOR_TIMEZONE = "America/New_York"
    settings.VENDOR_COUNTRY = "US"


def page_url(incident):
    return reverse("admin:support_incident_change", args=[incident.pk])


def rows(response) -> dict[str, str]:
    """The changelist's rows by incident number, in the order shown."""
    found = {}
    for row in re.findall(r"<tr>(.*?)</tr>", response.content.decode(), flags=re.S):
        number = re.search(r"INC-\d{4}-\d{6}|INC-Q-\d+", row)
        if number and "field-number" in row:
            found[number.group(0)] = row
    return found


def agent_user():
    agent = UserFactory(is_staff=True)
    agent.groups.add(Group.objects.get(name="Support agent"))
    return agent


def section(page: str, testid: str) -> str:
    return page.split(f'data-testid="{testid}"', 1)[1]


def customer_page(client, incident) -> str:
    client.force_login(owner_of(incident.account))
    response = client.get(reverse("incident_detail", args=[incident.number]))
    assert response.status_code == 200
    return response.content.decode()


def update(client, incident, **data):
    """Post the one change form, the other fields as the page shows them."""
    incident.refresh_from_db()
    post = {
        "action": "update",
        "update-severity": incident.severity,
        "update-scope": incident.scope,
        "update-billing": incident.billing,
        "update-assignee": incident.assignee_id or "",
    }
    post.update({f"update-{key}": value for key, value in data.items()})
    return client.post(page_url(incident), post)


@pytest.fixture
def agent(client):
    return staff_client(client, group="Support agent")


# --- the queue --------------------------------------------------------------------------


def test_the_queue_is_sorted_by_the_next_deadline_with_badges(client):
    # P1 opened Tuesday 14:00: first answer due Tuesday 15:00, overdue on Wednesday.
    overdue = open_one(cloud_account(2), severity="P1")
    # P3: 8 business hours, due Wednesday 14:00 (New York): due today.
    today = open_one(cloud_account(2), severity="P3")
    # P4: 16 business hours, due Thursday 14:00; an update deadline was missed before.
    breached = open_one(cloud_account(2), severity="P4")
    Incident.objects.filter(pk=breached.pk).update(
        breached=["update due 2026-03-09T15:00:00-04:00"]
    )
    # Declined as out of scope: no deadline, last.
    declined = open_one(
        cloud_account(2), subject="Custom code", description="Help us write code for a module."
    )
    assert declined.state == "declined"

    with time_machine.travel(WEDNESDAY, tick=False):
        staff_client(client, group="Support agent")
        response = client.get(reverse(CHANGELIST))
    assert response.status_code == 200
    shown = rows(response)
    assert list(shown) == [overdue.number, today.number, breached.number, declined.number]
    assert "incident-badge-overdue" in shown[overdue.number]
    assert "due today" not in shown[overdue.number]
    assert "due today" in shown[today.number] and "overdue" not in shown[today.number]
    assert "breached: update" in shown[breached.number]
    assert "overdue" not in shown[breached.number] and "due today" not in shown[breached.number]
    assert "incident-badge" not in shown[declined.number]
    assert "first response by Tue 10 Mar 2026, 15:00" in shown[overdue.number]
    assert "first response by Wed 11 Mar 2026, 14:00" in shown[today.number]
    assert today.account.name in shown[today.number]
    assert "Reports page shows an error" in shown[today.number]

    with time_machine.travel(WEDNESDAY, tick=False):
        staff_client(client, group="Support agent")
        page = client.get(page_url(breached)).content.decode()
    assert "Deadline breached:</strong> update" in page


def test_due_today_follows_the_vendors_time_zone(client):
    # Due Wednesday 14:00 in New York; at 21:00 on Tuesday in New York (Wednesday 01:00
    # UTC) it is not due today yet, though it is in UTC.
    incident = open_one(cloud_account(2), severity="P3")
    with time_machine.travel(datetime(2026, 3, 11, 1, 0, tzinfo=UTC), tick=False):
        staff_client(client, group="Support agent")
        shown = rows(client.get(reverse(CHANGELIST)))
    assert "incident-badge" not in shown[incident.number]


def test_filters_and_search(client, agent):
    p1 = open_one(cloud_account(2), severity="P1", subject="Login page is down")
    declined = open_one(
        cloud_account(2), subject="Training", description="Please train us on workflows."
    )
    assigned = open_one(cloud_account(2), severity="P2")
    services.incident_update(actor=agent, incident=assigned, assignee=agent)
    billed = open_one(cloud_account(2), severity="P4")
    services.incident_update(actor=agent, incident=billed, billing="billed")
    Incident.objects.filter(pk=billed.pk).update(state="resolved")

    def shown(query):
        response = client.get(reverse(CHANGELIST) + query)
        assert response.status_code == 200
        return set(rows(response))

    everyone = {p1.number, declined.number, assigned.number, billed.number}
    assert shown("") == everyone
    assert shown("?state__exact=declined") == {declined.number}
    assert shown("?state__exact=resolved") == {billed.number}
    assert shown("?severity__exact=P1") == {p1.number}
    assert shown("?scope__exact=training") == {declined.number}
    assert shown("?billing__exact=billed") == {billed.number}
    assert shown("?billing__exact=free") == {declined.number}
    assert shown(f"?assignee__id__exact={agent.pk}") == {assigned.number}
    assert shown(f"?q={p1.number}") == {p1.number}
    assert shown("?q=login+page") == {p1.number}
    assigned.account.name = "Northwind Traders"
    assigned.account.save(update_fields=["name"])
    assert shown("?q=northwind") == {assigned.number}


def test_assign_to_me_from_the_queue(client, agent):
    first = open_one(cloud_account(2))
    second = open_one(cloud_account(2))
    other = agent_user()
    services.incident_update(actor=other, incident=second, assignee=other)
    untouched = open_one(cloud_account(2))
    response = client.post(
        reverse(CHANGELIST),
        {"action": "assign_to_me", "_selected_action": [first.pk, second.pk], "index": 0},
        follow=True,
    )
    assert response.status_code == 200
    assignees = dict(Incident.objects.values_list("pk", "assignee"))
    assert assignees[first.pk] == assignees[second.pk] == agent.pk
    assert assignees[untouched.pk] is None
    text = [str(m) for m in response.context["messages"]]
    assert f"{first.number}: assigned to you." in text
    event = (
        AuditEvent.objects.filter(action="incident.updated", object_id=str(second.pk))
        .order_by("id")
        .last()
    )
    assert event.changes == {"assignee": [other.pk, agent.pk]} and event.actor == agent


def test_the_changelist_makes_as_many_queries_for_3_as_for_30_incidents(client):
    staff_client(client, group="Support agent")
    accounts = [AccountFactory() for _ in range(2)]

    def make(count, start):
        for i in range(count):
            due = WEDNESDAY + timedelta(hours=i - 3)
            Incident.objects.create(
                number=f"INC-Q-{start + i}",
                account=accounts[i % 2] if start == 0 else AccountFactory(),
                assignee=UserFactory(is_staff=True),
                channel="web",
                subject=f"Problem {start + i}",
                description="x",
                severity="P3",
                support_year_start=date(2026, 1, 15),
                seats_at_open=2,
                first_response_due_at=due,
                next_deadline=due,
                breached=["first response due x"] if i % 2 else [],
            )

    def queries():
        with CaptureQueriesContext(connection) as ctx:
            response = client.get(reverse(CHANGELIST))
        assert response.status_code == 200
        return len(ctx.captured_queries), len(rows(response))

    make(3, 0)
    few, shown = queries()
    assert shown == 3
    make(27, 3)
    many, shown = queries()
    assert shown == 30
    assert many == few


# --- the review page --------------------------------------------------------------------


def test_an_answer_puts_the_incident_in_progress_and_the_customer_sees_it(
    client, agent, django_capture_on_commit_callbacks
):
    incident = open_one(cloud_account(2), description="The weekly report fails (error 500).")
    page = client.get(page_url(incident)).content.decode()
    assert "The weekly report fails (error 500)." in section(page, "description")
    assert 'data-testid="answer-form"' in page and "Wait for the customer" in page

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            page_url(incident),
            {"action": "answer", "answer-body": "Clear the report cache, then run it again."},
        )
    assert response.status_code == 302
    incident.refresh_from_db()
    assert incident.state == "in_progress" and incident.first_response_at is not None
    assert incident.assignee == agent and incident.next_deadline == incident.update_due_at
    assert mail.outbox[-1].to == [owner_of(incident.account).email]

    customer = customer_page(client, incident)
    assert "In progress" in section(customer, "incident-status")
    assert "Clear the report cache, then run it again." in customer


def test_an_answer_can_wait_for_the_customer(client, agent):
    incident = open_one(cloud_account(2))
    response = client.post(
        page_url(incident),
        {"action": "answer", "answer-body": "Which browser do you use?", "answer-wait": "on"},
    )
    assert response.status_code == 302
    incident.refresh_from_db()
    assert incident.state == "waiting_on_customer" and incident.next_deadline is None
    assert "Waiting for your answer" in customer_page(client, incident)


def test_an_empty_or_refused_answer_is_a_message_and_the_input_is_kept(client, agent):
    incident = open_one(cloud_account(2))
    response = client.post(page_url(incident), {"action": "answer", "answer-body": " "})
    assert response.status_code == 200
    assert "Write the answer." in response.content.decode()

    # Resolved in another tab meanwhile: the answer is refused, its text stays.
    page_state = incident.state
    services.incident_set_state(actor=agent, incident=incident, state="resolved")
    assert page_state == "open"
    response = client.post(
        page_url(incident),
        {"action": "answer", "answer-body": "Try this workaround.", "answer-wait": "on"},
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert f"{incident.number} is resolved." in page
    assert "Try this workaround." in page
    assert not IncidentMessage.objects.filter(incident=incident).exists()


def test_an_internal_note_is_marked_and_never_shown_to_the_customer(
    client, agent, django_capture_on_commit_callbacks
):
    incident = open_one(cloud_account(2))
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            page_url(incident),
            {"action": "note", "note-body": "Probably the cache bug #4411."},
            follow=True,
        )
    page = response.content.decode()
    thread = section(page, "thread")
    assert "Probably the cache bug #4411." in thread and "Internal note" in thread
    incident.refresh_from_db()
    assert incident.state == "open" and incident.first_response_at is None  # no answer
    assert not any("#4411" in message.body for message in mail.outbox)

    customer = customer_page(client, incident)
    assert "#4411" not in customer


def test_reclassifying_a_declined_incident_opens_it_in_the_quota(client, agent):
    incident = open_one(
        cloud_account(2), subject="Custom code", description="Help us write code for a module."
    )
    assert (incident.state, incident.billing) == ("declined", "free")
    page = client.get(page_url(incident)).content.decode()
    assert 'data-testid="answer-form"' not in page  # declined: notes only

    response = update(client, incident, scope="standard")
    assert response.status_code == 302
    incident.refresh_from_db()
    assert (incident.state, incident.scope, incident.billing) == ("open", "standard", "quota")
    assert incident.next_deadline == incident.first_response_due_at is not None

    # And back out of scope: an active incident is declined.
    update(client, incident, scope="implementation")
    incident.refresh_from_db()
    assert (incident.state, incident.billing) == ("declined", "free")


def test_billing_severity_and_assignee_change_in_one_form(client, agent):
    incident = open_one(cloud_account(2), severity="P3")
    other = agent_user()
    response = update(client, incident, severity="P1", billing="billed", assignee=other.pk)
    assert response.status_code == 302
    incident.refresh_from_db()
    assert (incident.severity, incident.billing, incident.assignee) == ("P1", "billed", other)
    event = AuditEvent.objects.filter(action="incident.updated").get()
    assert event.changes == {
        "severity": ["P3", "P1"],
        "billing": ["quota", "billed"],
        "assignee": [None, other.pk],
    }

    update(client, incident, billing="free")
    incident.refresh_from_db()
    assert incident.billing == "free"

    response = update(client, incident, assignee="")
    assert response.status_code == 200
    assert "cannot be left with nobody" in response.content.decode()

    response = client.post(page_url(incident), {"action": "update"}, follow=True)
    assert "Correct the changes below." in response.content.decode()


def test_resolve_then_close(client, agent, django_capture_on_commit_callbacks):
    incident = open_one(cloud_account(2))
    page = client.get(page_url(incident)).content.decode()
    assert ">Resolve</button>" in page and ">Close</button>" in page
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(page_url(incident), {"action": "resolve"}).status_code == 302
    incident.refresh_from_db()
    assert incident.state == "resolved" and incident.resolved_at and incident.next_deadline is None
    page = client.get(page_url(incident)).content.decode()
    assert ">Resolve</button>" not in page and ">Close</button>" in page
    assert "Resolved" in customer_page(client, incident)

    staff_client(client, group="Support agent")
    assert client.post(page_url(incident), {"action": "close"}).status_code == 302
    incident.refresh_from_db()
    assert incident.state == "closed" and incident.closed_at

    response = client.post(page_url(incident), {"action": "resolve"})
    assert response.status_code == 200
    assert "is closed: it cannot become resolved." in response.content.decode()


def test_the_history_lists_the_incidents_audit_events(client, agent):
    incident = open_one(cloud_account(2))
    client.post(page_url(incident), {"action": "answer", "answer-body": "Looking at it."})
    client.post(page_url(incident), {"action": "note", "note-body": "Asked dev."})
    update(client, incident, severity="P2")
    client.post(page_url(incident), {"action": "resolve"})
    other = open_one(cloud_account(2))
    services.incident_set_state(actor=agent, incident=other, state="closed")

    history = section(client.get(page_url(incident)).content.decode(), "history")
    for action in (
        "incident.opened",
        "incident.answered",
        "incident.note",
        "incident.updated",
        "incident.state_changed",
    ):
        assert action in history
    assert "severity: P3 → P2" in history and "state: in_progress → resolved" in history
    assert agent.email in history and owner_of(incident.account).email in history
    assert other.number not in history and "open → closed" not in history

    response = client.get(reverse("admin:support_incident_history", args=[incident.pk]))
    assert response.status_code == 302 and response["Location"].endswith("#history")


# --- who may see and act ----------------------------------------------------------------


def test_a_billing_reviewer_has_no_support_console(client):
    staff_client(client, group="Billing reviewer")
    incident = open_one(cloud_account(2))
    assert client.get(reverse(CHANGELIST)).status_code == 403
    assert client.get(page_url(incident)).status_code == 403
    assert client.post(page_url(incident), {"action": "resolve"}).status_code == 403
    incident.refresh_from_db()
    assert incident.state == "open"


def test_view_only_staff_read_the_page_without_forms(client):
    viewer = staff_client(client, group="Billing reviewer")
    viewer.user_permissions.add(Permission.objects.get(codename="view_incident"))
    incident = open_one(cloud_account(2))
    services.incident_respond(
        actor=agent_user(), incident=incident, body="Internal x", internal=True
    )
    response = client.get(page_url(incident))
    assert response.status_code == 200
    page = response.content.decode()
    assert incident.number in page and "Internal x" in page
    assert "<form" not in page.split('id="content-main"')[1]
    for action in ({"action": "resolve"}, {"action": "answer", "answer-body": "Hi"}):
        assert client.post(page_url(incident), action).status_code == 403
    incident.refresh_from_db()
    assert incident.state == "open"
    queue = client.get(reverse(CHANGELIST)).content.decode()
    assert incident.number in queue and "Assign to me" not in queue


def test_incidents_are_never_added_or_deleted_in_the_console(client):
    staff_client(client, superuser=True)
    incident = open_one(cloud_account(2))
    assert client.get(reverse("admin:support_incident_add")).status_code == 403
    delete = reverse("admin:support_incident_delete", args=[incident.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    assert Incident.objects.filter(pk=incident.pk).exists()


# --- planned maintenance ----------------------------------------------------------------


def test_a_maintenance_notice_shows_on_the_service_level_page_once_published(client):
    staff = staff_client(client, group="Support agent")
    start = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0)
    form = {
        "title": "Database upgrade",
        "body": "The portal is read-only for an hour.",
        "starts_at_0": start.strftime("%Y-%m-%d"),
        "starts_at_1": "22:00:00",
        "ends_at_0": start.strftime("%Y-%m-%d"),
        "ends_at_1": "21:00:00",
    }
    add = reverse("admin:support_maintenancenotice_add")
    response = client.post(add, form)
    assert response.status_code == 200
    assert "The maintenance must end after it starts." in response.content.decode()

    response = client.post(add, {**form, "ends_at_1": "23:00:00"})
    assert response.status_code == 302, response.content.decode()[:2000]
    notice = MaintenanceNotice.objects.get()
    assert not notice.published
    assert AuditEvent.objects.filter(
        action="maintenancenotice.created_by_staff", actor=staff
    ).exists()
    levels = reverse("service_levels")
    assert 'data-testid="maintenance"' not in client.get(levels).content.decode()
    assert (
        "Database upgrade"
        in client.get(reverse("admin:support_maintenancenotice_changelist")).content.decode()
    )

    change = reverse("admin:support_maintenancenotice_change", args=[notice.pk])
    response = client.post(change, {**form, "ends_at_1": "23:00:00", "published": "on"})
    assert response.status_code == 302
    customer = UserFactory()
    client.force_login(customer)
    page = client.get(levels).content.decode()
    assert "Database upgrade" in section(page, "maintenance")
    assert "The portal is read-only for an hour." in page


def test_a_past_notice_is_no_longer_shown(client):
    MaintenanceNotice.objects.create(
        title="Old window",
        starts_at=TUESDAY - timedelta(days=400),
        ends_at=TUESDAY - timedelta(days=399),
        published=True,
    )
    client.force_login(UserFactory())
    assert "Old window" not in client.get(reverse("service_levels")).content.decode()
