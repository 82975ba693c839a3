"""Payment gateways: one interface, chosen by the BILLING_GATEWAY setting.

`manual` (the embedded default): nothing is charged automatically; the order
waits until staff record the outside payment (bank transfer, cheque) with its
reference. Stripe arrives as a second implementation of the same interface.
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
        self, *, account, amount: Money, idempotency_key: str, description: str
    ) -> ChargeResult:
        """Ask for `amount`; the same idempotency key never charges twice."""


GATEWAYS = {"manual": "billing.gateways.manual.ManualGateway"}


def get_gateway(name: str | None = None) -> Gateway:
    name = name or settings.BILLING_GATEWAY
    return import_string(GATEWAYS[name])()
