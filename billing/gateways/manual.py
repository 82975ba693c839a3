from . import ChargeResult


class ManualGateway:
    """Payments made outside the portal and recorded by staff with their reference."""

    name = "manual"

    def charge(
        self, *, account, amount, idempotency_key, description, payment_id=None
    ) -> ChargeResult:
        return ChargeResult(
            status="pending",
            message=(
                f"Pay {amount} by bank transfer quoting {description}; it is added the moment "
                "our billing team records the payment."
            ),
        )

    def refund(self, *, charge_reference, amount, idempotency_key, metadata) -> ChargeResult:
        return ChargeResult(
            status="pending",
            message=f"Pay {amount} back by bank transfer and record its reference.",
        )
