"""Billing's public services: every change to money state, one function per use case.

Callers outside billing (refunds, support, marketplace, the pages, the API, the console
and the jobs) import from here and from billing.selectors only. The modules of this
package are billing's own, by concern:

    ledger          credits in, applied to charges, adjustments
    orders          placing and cancelling orders
    payments        gateway charges, their results, manual payments
    delivery        what a paid order delivers; services accepted by staff
    subscriptions   start, seats, plan change, cancel, renewal
    purchases       buying from the catalogue
    usage           credits used, metered usage and its monthly bill
    licences        licence keys: issued, activated, revoked, renounced
    support         on-premise support renewals, extra support incidents
    refunds         what came back on a purchase, and what a refund takes back
    apps            selling marketplace apps: their products, subscriptions and licences
    details         the account's billing details (legal name, address, tax ID)
    documents       invoices and credit notes, numbered without a gap
"""

from .apps import (
    app_licence_buy,
    app_product_save,
    app_subscription_cancel,
    app_subscription_start,
    app_subscription_switch,
)
from .delivery import service_mark_accepted
from .details import billing_details_update
from .documents import invoice_for
from .ledger import ledger_adjust, ledger_apply_to_charge, ledger_credit
from .licences import licence_activate, licence_revoke
from .orders import OrderTotals, order_cancel, order_totals
from .payments import (
    idempotency_key,
    payment_failed,
    payment_record_manual,
    payment_refund_at_gateway,
    payment_request,
    payment_retry,
    payment_succeeded,
    payments_retry_due,
)
from .purchases import MAX_ITEMS, MAX_QUANTITY, PurchaseQuote, purchase_place, purchase_quote
from .refunds import TakeBack, refund_hold_units, refund_record, refund_take_back
from .reminders import reminders_send_due
from .subscriptions import (
    subscription_change_plan,
    subscription_change_seats,
    subscription_plan_preview,
    subscription_plan_quote,
    subscription_renew,
    subscription_seat_preview,
    subscription_seat_quote,
    subscription_set_cancel_at_period_end,
    subscription_start,
    subscriptions_renew_chunk,
    subscriptions_renew_dispatch,
    subscriptions_renew_due,
)
from .support import support_incident_order, support_renew
from .usage import credits_use, usage_bill, usage_bill_due, usage_record, usage_record_batch

__all__ = [
    "MAX_ITEMS",
    "MAX_QUANTITY",
    "OrderTotals",
    "PurchaseQuote",
    "TakeBack",
    "app_licence_buy",
    "app_product_save",
    "app_subscription_cancel",
    "app_subscription_start",
    "app_subscription_switch",
    "billing_details_update",
    "credits_use",
    "idempotency_key",
    "invoice_for",
    "ledger_adjust",
    "ledger_apply_to_charge",
    "ledger_credit",
    "licence_activate",
    "licence_revoke",
    "order_cancel",
    "order_totals",
    "payment_failed",
    "payment_record_manual",
    "payment_refund_at_gateway",
    "payment_request",
    "payment_retry",
    "payment_succeeded",
    "payments_retry_due",
    "purchase_place",
    "purchase_quote",
    "refund_hold_units",
    "refund_record",
    "refund_take_back",
    "reminders_send_due",
    "service_mark_accepted",
    "subscription_change_plan",
    "subscription_change_seats",
    "subscription_plan_preview",
    "subscription_plan_quote",
    "subscription_renew",
    "subscription_seat_preview",
    "subscription_seat_quote",
    "subscription_set_cancel_at_period_end",
    "subscription_start",
    "subscriptions_renew_chunk",
    "subscriptions_renew_dispatch",
    "subscriptions_renew_due",
    "support_incident_order",
    "support_renew",
    "usage_bill",
    "usage_bill_due",
    "usage_record",
    "usage_record_batch",
]
