"""onecloud §4 end to end, the way a customer meets it: install through the API, pay,
cancel, and ask for the refund the app's page offers. Dates travel with time-machine."""

from datetime import timedelta

import pytest
import time_machine
from django.core import mail

from billing.models import Order, OrderLine, Subscription
from marketplace import services
from marketplace.models import Earning, Installation

from .conftest import DAY_ONE, plan_of

pytestmark = pytest.mark.django_db


def install(api_client, owner, account, app, **body):
    api_client.force_authenticate(owner)
    response = api_client.post(
        f"/api/v1/accounts/{account.pk}/installations/", {"app": app.slug, **body}, format="json"
    )
    assert response.status_code == 201, response.content
    return response.json()


def cancel(api_client, account, installation_id):
    response = api_client.post(
        f"/api/v1/accounts/{account.pk}/installations/{installation_id}/cancel/"
    )
    assert response.status_code == 200, response.content
    return response.json()


def ask_refund(api_client, account, line_id, reason="no_longer_needed"):
    response = api_client.post(
        f"/api/v1/accounts/{account.pk}/refund-requests/",
        {"lines": [line_id], "reason": reason, "payout_method": "original", "text": "Please."},
        format="json",
    )
    assert response.status_code == 201, response.content
    return response.json()["lines"][0]


def test_cancel_during_the_trial_charges_nothing_ever(api_client, owner, account, make_app):
    app = make_app("notes", "subscription", "30", trial_days=14)
    with time_machine.travel(DAY_ONE, tick=False):
        data = install(api_client, owner, account, app)
        assert data["installation"]["state"] == "trialing"
        assert data["installation"]["trial_end"] == "2026-03-16"
        assert "not refundable" in data["message"]
        assert not Order.objects.filter(account=account).exists()
    with time_machine.travel(DAY_ONE + timedelta(days=10), tick=False):
        data = cancel(api_client, account, data["installation"]["id"])
        assert data["installation"]["state"] == "cancelled"
        assert "nothing is charged" in data["message"]
    # The trial's end passes: the renewal job charges nothing.
    with time_machine.travel(DAY_ONE + timedelta(days=20), tick=False):
        from billing.services import subscriptions_renew_due

        subscriptions_renew_due()
    assert not Order.objects.filter(account=account).exists()
    assert Subscription.objects.get(account=account).status == "cancelled"


def _paid_subscription(api_client, owner, account, app, pay):
    with time_machine.travel(DAY_ONE, tick=False):
        data = install(api_client, owner, account, app)
        assert data["installation"]["state"] == "pending"
        order = Order.objects.get(account=account)
        pay(order, DAY_ONE)
        inst = Installation.objects.get(pk=data["installation"]["id"])
        assert inst.state == "active"  # access the moment it is paid (delivery policy §1-2)
    return inst, order.lines.get()


@pytest.mark.parametrize(
    ("days", "outcome", "amount"),
    [
        (0, "refund", "30.00"),  # the first day: the whole cycle back
        (3, "refund", "27.10"),  # day 3 (5 March): 3 of 31 days used -> 28/31 of 30.00
        (4, "none", "0.00"),  # day 4: the 3-day window of §4 has ended
    ],
)
def test_first_cycle_refund_window(
    api_client, owner, account, make_app, pay, days, outcome, amount
):
    app = make_app("digest", "subscription", "30")
    inst, line = _paid_subscription(api_client, owner, account, app, pay)
    with time_machine.travel(DAY_ONE + timedelta(days=days), tick=False):
        data = cancel(api_client, account, inst.pk)
        refund = data["refund"]
        assert refund["outcome"] == outcome
        assert refund["amount"] == amount
        assert data["installation"]["cancel_at_period_end"] is True
        assert data["installation"]["state"] == "active"  # access to the end of the period
        decided = ask_refund(api_client, account, line.pk)
        assert decided["engine_outcome"] == outcome
        assert decided["engine_amount"]["amount"] == amount
        assert "§4" in decided["explanation"] or decided["clause"] == "onecloud §4"


def test_developer_refund_days_replace_the_three(api_client, owner, account, make_app, pay):
    app = make_app("insights", "subscription", "31", refund_days=14)
    inst, line = _paid_subscription(api_client, owner, account, app, pay)
    assert line.refund_days == 14
    with time_machine.travel(DAY_ONE + timedelta(days=10), tick=False):
        decided = ask_refund(api_client, account, line.pk)
        assert decided["engine_outcome"] == "refund"
    with time_machine.travel(DAY_ONE + timedelta(days=15), tick=False):
        offer = services.refund_offer(inst)
        assert offer["outcome"] == "none"


def test_the_cycle_after_a_trial_is_not_refunded(api_client, owner, account, make_app, pay):
    app = make_app("notes", "subscription", "30", trial_days=7)
    with time_machine.travel(DAY_ONE, tick=False):
        data = install(api_client, owner, account, app)
    with time_machine.travel(DAY_ONE + timedelta(days=7), tick=False):
        from billing.services import subscriptions_renew_due

        subscriptions_renew_due()
        order = Order.objects.get(account=account)
        line = order.lines.get()
        assert line.first_purchase is True
        pay(order, DAY_ONE + timedelta(days=7))
        inst = Installation.objects.get(pk=data["installation"]["id"])
        assert inst.state == "active"
        # Inside 3 days of the first payment, but it followed a trial: no refund (§4).
        decided = ask_refund(api_client, account, line.pk)
        assert decided["engine_outcome"] == "none"
        assert "trial" in decided["explanation"]


@pytest.mark.parametrize(("days", "outcome"), [(3, "review"), (4, "none")])
def test_defective_lifetime_licence(api_client, owner, account, make_app, pay, days, outcome):
    app = make_app("org-chart", "one_time", "49")
    with time_machine.travel(DAY_ONE, tick=False):
        data = install(api_client, owner, account, app)
        order = pay(Order.objects.get(account=account), DAY_ONE)
        inst = Installation.objects.get(pk=data["installation"]["id"])
        assert inst.state == "active" and inst.licence_line_id
        assert order.lines.get().licence.status == "active"  # a key through billing
    with time_machine.travel(DAY_ONE + timedelta(days=days), tick=False):
        decided = ask_refund(api_client, account, inst.licence_line_id, reason="defective")
        assert decided["engine_outcome"] == outcome
        assert decided["clause"] == "onecloud §4"
        if outcome == "review":
            assert decided["engine_amount"]["amount"] == "49.00"  # staff review the claim


def test_lifetime_licence_not_refunded_without_a_defect(api_client, owner, account, make_app, pay):
    app = make_app("org-chart", "one_time", "49")
    with time_machine.travel(DAY_ONE, tick=False):
        data = install(api_client, owner, account, app)
        pay(Order.objects.get(account=account), DAY_ONE)
        inst = Installation.objects.get(pk=data["installation"]["id"])
        assert ask_refund(api_client, account, inst.licence_line_id)["engine_outcome"] == "none"


@pytest.mark.parametrize(("days", "outcome"), [(3, "review"), (4, "none")])
def test_usage_billing_error_counted_from_the_charge(
    api_client, owner, account, make_app, pay, days, outcome
):
    app = make_app("sms", "usage", "0.05", unit_name="message")
    with time_machine.travel(DAY_ONE, tick=False):
        data = install(api_client, owner, account, app, usage_cap="100.00")
        inst = Installation.objects.get(pk=data["installation"]["id"])
        services.usage_report(app=app, installation_id=inst.pk, quantity=200, idempotency_key="a")
    charged = DAY_ONE + timedelta(days=30)  # 1 April: March is billed, one line per charge
    with time_machine.travel(charged, tick=False):
        from billing.services import usage_bill

        order = pay(usage_bill(account=account), charged)
        line = order.lines.get()
        assert line.kind == "app_usage" and line.amount == 10
    with time_machine.travel(charged + timedelta(days=days), tick=False):
        decided = ask_refund(api_client, account, line.pk, reason="billing_error")
        assert decided["engine_outcome"] == outcome
        assert decided["clause"] == "onecloud §4"


def test_usage_charge_without_an_error_is_final(api_client, owner, account, make_app, pay):
    app = make_app("sms", "usage", "0.05")
    with time_machine.travel(DAY_ONE, tick=False):
        data = install(api_client, owner, account, app)
        services.usage_report(
            app=app, installation_id=data["installation"]["id"], quantity=20, idempotency_key="a"
        )
    with time_machine.travel(DAY_ONE + timedelta(days=30), tick=False):
        from billing.services import usage_bill

        order = pay(usage_bill(account=account), DAY_ONE + timedelta(days=30))
        assert ask_refund(api_client, account, order.lines.get().pk)["engine_outcome"] == "none"


def test_external_app_redirects_to_the_developer(api_client, owner, account, make_app):
    app = make_app(
        "chimp",
        "external",
        external_url="https://chimp.example/signup",
        external_refund_contact="refunds@chimp.example",
    )
    with time_machine.travel(DAY_ONE, tick=False):
        data = install(api_client, owner, account, app)
        assert data["redirect_url"] == "https://chimp.example/signup"
        inst_id = data["installation"]["id"]
        response = api_client.get(f"/api/v1/accounts/{account.pk}/installations/{inst_id}/refund/")
    assert response.status_code == 200
    refund = response.json()["refund"]
    assert refund["outcome"] == "redirect"
    assert refund["contact"] == "refunds@chimp.example"
    assert not OrderLine.objects.filter(order__account=account).exists()  # nothing invented


def test_trial_mails_three_days_before_and_on_the_last_day(
    api_client, owner, account, make_app, django_capture_on_commit_callbacks
):
    app = make_app("notes", "subscription", "30", trial_days=14)
    with time_machine.travel(DAY_ONE, tick=False):
        install(api_client, owner, account, app)
    mail.outbox.clear()
    last_day = DAY_ONE + timedelta(days=13)  # 15 March
    with time_machine.travel(last_day - timedelta(days=4), tick=False):
        assert services.trials_remind() == 0
    with time_machine.travel(last_day - timedelta(days=3), tick=False):
        with django_capture_on_commit_callbacks(execute=True):
            assert services.trials_remind() == 1
        assert services.trials_remind() == 0  # once
    with (
        time_machine.travel(last_day, tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert services.trials_remind() == 1
    assert len(mail.outbox) == 2
    assert "trial ends on March 15, 2026" in mail.outbox[0].subject
    assert "ends today" in mail.outbox[1].subject
    for message in mail.outbox:
        assert "App Marketplace policy (section 4: http" in message.body
        assert "/policies/onecloud/#s4)" in message.body and "no refund" in message.body
        assert message.alternatives[0][1] == "text/html"


def test_earnings_held_then_available_then_reversed_by_a_refund(
    api_client, owner, account, make_app, pay, staff
):
    app = make_app("digest", "subscription", "30")
    _inst, line = _paid_subscription(api_client, owner, account, app, pay)
    earning = Earning.objects.get(line=line)
    assert (earning.gross, earning.fee, earning.net) == (30, 6, 24)
    assert earning.status == "held"
    with time_machine.travel(DAY_ONE + timedelta(days=2), tick=False):
        assert services.earnings_release() == 0  # the refund window is open
    with time_machine.travel(DAY_ONE + timedelta(days=5), tick=False):
        assert services.earnings_release() == 1
        from billing.services import refund_record

        refund_record(
            actor=staff,
            account=account,
            method="credit",
            amounts={line.pk: 10},
            reference="RR-T",
            key="k1",
        )
    reversal = Earning.objects.get(refund__isnull=False)
    assert (reversal.gross, reversal.net) == (-10, -8)
    payout = services.developer_payout_record(
        actor=staff,
        developer=app.developer,
        month=DAY_ONE.date(),
        currency="USD",
        reference="BANK-9",
    )
    assert payout.amount == 16
    assert set(Earning.objects.values_list("status", flat=True)) == {"paid"}


def test_members_see_but_cannot_install(api_client, account, make_app):
    from tests.factories import MembershipFactory

    member = MembershipFactory(account=account, role="member").user
    app = make_app("calendar", "free")
    api_client.force_authenticate(member)
    response = api_client.post(
        f"/api/v1/accounts/{account.pk}/installations/", {"app": app.slug}, format="json"
    )
    assert response.status_code == 403
    assert api_client.get(f"/api/v1/accounts/{account.pk}/installations/").status_code == 200


def test_another_accounts_installation_is_404(api_client, owner, account, make_app):
    from tests.factories import AccountFactory, owner_of

    app = make_app("calendar", "free")
    data = install(api_client, owner, account, app)
    other = AccountFactory()
    api_client.force_authenticate(owner_of(other))
    url = f"/api/v1/accounts/{other.pk}/installations/{data['installation']['id']}/"
    assert api_client.get(url).status_code == 404
    assert api_client.post(url + "cancel/").status_code == 404


def test_uninstall_then_install_again_without_a_second_trial(api_client, owner, account, make_app):
    app = make_app("notes", "subscription", "30", trial_days=14)
    with time_machine.travel(DAY_ONE, tick=False):
        data = install(api_client, owner, account, app)
        response = api_client.post(
            f"/api/v1/accounts/{account.pk}/installations/{data['installation']['id']}/uninstall/"
        )
        assert response.json()["installation"]["state"] == "uninstalled"
        again = install(api_client, owner, account, app)
        assert again["installation"]["state"] == "pending"  # the trial was used
        assert plan_of(app).trial_days == 14


def test_a_prorated_refund_ends_the_app_at_once(api_client, owner, account, make_app, pay, staff):
    from billing.services import refund_record, refund_take_back

    app = make_app("digest", "subscription", "31")
    inst, line = _paid_subscription(api_client, owner, account, app, pay)
    with time_machine.travel(DAY_ONE + timedelta(days=2), tick=False):
        offer = services.refund_offer(inst)
        assert offer["outcome"] == "refund" and offer["amount"] == "29.00"
        refund_record(
            actor=staff,
            account=account,
            method="credit",
            amounts={line.pk: 29},
            reference="RR-1",
            key="rr1",
        )
        taken = refund_take_back(actor=staff, account=account, line_ids=[line.pk], reference="RR-1")
    assert taken.taken  # the unused part came back: the cycle ends with it
    inst.refresh_from_db()
    assert inst.state == "cancelled"
    assert Subscription.objects.get(pk=inst.subscription_id).status == "cancelled"


def test_a_plan_switch_takes_effect_with_the_renewal_it_is_paid_in(
    api_client, owner, account, make_app, add_plan, pay
):
    from billing.services import subscriptions_renew_due

    app = make_app("digest", "subscription", "30")
    add_plan(app)
    inst, _line = _paid_subscription(api_client, owner, account, app, pay)
    api_client.force_authenticate(owner)
    changed = api_client.patch(
        f"/api/v1/accounts/{account.pk}/installations/{inst.pk}/", {"plan": "yearly"}, format="json"
    ).json()
    assert (
        changed["installation"]["plan"] == "main"
        and changed["installation"]["pending_plan"] == "yearly"
    )
    assert "moves to Yearly on April 2, 2026." in changed["message"]
    renewal = DAY_ONE + timedelta(days=31)
    with time_machine.travel(renewal, tick=False):
        subscriptions_renew_due()
        order = Order.objects.filter(account=account, status="awaiting_payment").get()
        assert order.total == 300
        pay(order, renewal)
    inst.refresh_from_db()
    assert (inst.plan.code, inst.pending_plan, inst.state) == ("yearly", None, "active")


def test_install_by_ids_too(api_client, owner, account, make_app):
    app = make_app("calendar", "free")
    api_client.force_authenticate(owner)
    response = api_client.post(
        f"/api/v1/accounts/{account.pk}/installations/",
        {"app": str(app.pk), "plan": str(app.plans.get().pk)},
        format="json",
    )
    assert response.status_code == 201
    assert api_client.post(
        f"/api/v1/accounts/{account.pk}/installations/", {"app": "no-such-app"}, format="json"
    ).json() == {"app": ["There is no published app “no-such-app”."]}
