"""Payment gateways: one interface, chosen by the BILLING_GATEWAY setting.

`manual` (the embedded default): nothing is charged automatically; the order
waits until staff record the outside payment (bank transfer, cheque) with its
reference. `stripe` charges the card the account keeps on file (gateways/stripe.py).
"""

from dataclasses import dataclass
from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string

from ..money import Money


@dataclass(frozen=True)
class ChargeResult:
    status: str  # "succeeded" | "pending" | "failed"
    reference: str = ""
    message: str = ""


class Gateway(Protocol):
    name: str

    def charge(
        self,
        *,
        account,
        amount: Money,
        idempotency_key: str,
        description: str,
        payment_id: int | None = None,
    ) -> ChargeResult:
        """Ask for `amount`; the same idempotency key never charges twice.

        `description` is the order's number; `payment_id` the portal Payment asked
        for, which the gateway's notifications (webhooks) carry back."""

    def refund(
        self, *, charge_reference: str, amount: Money, idempotency_key: str, metadata: dict
    ) -> ChargeResult:
        """Give back `amount` of a charge; the same idempotency key never refunds twice."""


GATEWAYS = {
    "manual": "billing.gateways.manual.ManualGateway",
    "stripe": "billing.gateways.stripe.StripeGateway",
}


def get_gateway(name: str | None = None) -> Gateway:
    name = name or settings.BILLING_GATEWAY
    return import_string(GATEWAYS[name])()
