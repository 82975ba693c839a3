"""Browser, 360 px wide: the refund form is one row per purchase (its box beside its own
description and policy), the file attached before the preview is kept and sent, and
withdrawing asks first."""

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from refunds.models import RefundRequest
from tests.factories import PASSWORD, owner_of

pytestmark = pytest.mark.browser


def test_refund_form_on_a_phone(page, transactional_db, paid_order, screenshot, tmp_path, settings):
    settings.MEDIA_ROOT = str(tmp_path)
    account, order = paid_order(when=timezone.now())
    page.set_viewport_size({"width": 360, "height": 740})
    page.goto("/accounts/login/")
    page.get_by_label("Email").fill(owner_of(account).email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign In").click()
    page.goto(f"/settings/billing/orders/{order.pk}/refund/")
    rows = page.get_by_test_id("purchase-row")
    expect(rows).to_have_count(2)
    credits, plugin = order.lines.order_by("pk")
    for index, line in enumerate((credits, plugin)):
        row = rows.nth(index)
        box = row.get_by_role("checkbox")
        expect(box).to_have_count(1)
        expect(row).to_contain_text(line.description)
        expect(row.get_by_test_id("purchase-policy")).to_be_visible()
        # The box sits inside its own row, left of its description, level with it.
        box_at, row_at = box.bounding_box(), row.bounding_box()
        label_at = row.locator("label").bounding_box()
        assert row_at["y"] <= box_at["y"] and box_at["y"] + box_at["height"] <= (
            row_at["y"] + row_at["height"]
        )
        assert box_at["x"] + box_at["width"] <= label_at["x"]
        assert box_at["y"] < label_at["y"] + label_at["height"]
        assert label_at["y"] < box_at["y"] + box_at["height"]
    # The form itself never spills sideways at 360 px (the top bar's layout is not its own).
    spill = page.get_by_test_id("refund-form").evaluate(
        "form => [form.scrollWidth, form.clientWidth, form.getBoundingClientRect().width]"
    )
    assert spill[0] <= spill[1] and spill[2] <= 360, spill

    rows.nth(0).get_by_label(credits.description, exact=False).check()
    page.get_by_label("Reason").select_option("billing_error")
    statement = tmp_path / "statement.pdf"
    statement.write_bytes(b"%PDF-1.4 bank statement")
    page.get_by_label("Evidence (PDF, images or text)").set_input_files(str(statement))
    page.get_by_role("button", name="See what the policy says").click()
    expect(page.get_by_test_id("refund-preview")).to_contain_text("What our policy says")
    expect(page.get_by_test_id("kept-files")).to_contain_text("Kept: statement.pdf")
    screenshot(page, "preview-360")
    page.get_by_role("button", name="Send the refund request").click()
    expect(page.get_by_test_id("refund-status")).to_contain_text("Received")
    expect(page.get_by_text("statement.pdf")).to_be_visible()
    request = RefundRequest.objects.get()
    assert [e.name for e in request.evidence.all()] == ["statement.pdf"]

    asked = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
    page.get_by_role("button", name="Withdraw this request").click()
    assert asked == [f"Withdraw {request.number}?"]
    request.refresh_from_db()
    assert request.state == "received"
