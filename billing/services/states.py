"""The moves an order, a payment, a subscription and a licence may make: one table each.

Every status change goes through these machines (accounts.state_machine): an illegal
move is refused naming both states, and each move writes its audit row.
"""

from accounts.state_machine import machine_for

from ..hooks import SUBSCRIPTION_MOVED_HOOKS
from ..models import Licence, Order, Payment, Subscription

_O, _P, _S = Order.Status, Payment.Status, Subscription.Status

ORDER = machine_for(
    Order,
    field="status",
    noun="order",
    transitions={
        _O.AWAITING_PAYMENT: {_O.PAID, _O.CANCELLED},
        _O.PAID: set(),
        _O.CANCELLED: set(),
    },
)

PAYMENT = machine_for(
    Payment,
    field="status",
    noun="payment",
    transitions={
        _P.PENDING: {_P.SUCCEEDED, _P.FAILED, _P.DUPLICATE},
        # A gateway's late word: a success after it said failed, or after the order was
        # withdrawn (the money is then held as credit).
        _P.FAILED: {_P.SUCCEEDED, _P.DUPLICATE},
        _P.SUCCEEDED: set(),
        _P.DUPLICATE: set(),
    },
)

SUBSCRIPTION = machine_for(
    Subscription,
    field="status",
    noun="subscription",
    transitions={
        _S.PENDING: {_S.ACTIVE, _S.CANCELLED},  # first payment, or its order withdrawn
        _S.TRIALING: {_S.ACTIVE, _S.LAPSED, _S.CANCELLED},
        _S.ACTIVE: {_S.LAPSED, _S.CANCELLED},
        _S.LAPSED: {_S.ACTIVE, _S.CANCELLED},  # the renewal paid, or withdrawn
        _S.CANCELLED: set(),
    },
    after=SUBSCRIPTION_MOVED_HOOKS,
)

LICENCE = machine_for(
    Licence,
    field="status",
    noun="licence",
    transitions={Licence.Status.ACTIVE: {Licence.Status.REVOKED}, Licence.Status.REVOKED: set()},
)
