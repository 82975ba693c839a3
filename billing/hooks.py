"""Where the apps built on billing plug in, without billing ever importing them.

Each app registers its functions in its AppConfig.ready.
"""

# Functions (order, actor, now) called when an order is paid, in its transaction
# (support opens an extra incident once it is paid).
ORDER_PAID_HOOKS: list = []
# Functions (order, actor) called when an unpaid order is cancelled.
ORDER_CANCELLED_HOOKS: list = []
# Functions (account, orders) -> extra context for the Billing page (refunds adds what
# each purchase would get, and the account's requests).
PAGE_EXTENSIONS: list = []
# Functions (subscription, old, new, actor) called after a subscription's status moves,
# in its transaction (the marketplace follows the app subscription behind an installation).
SUBSCRIPTION_MOVED_HOOKS: list = []
# Functions (line, refund) called when money came back on an order line (LineRefund), in
# its transaction (the marketplace reverses the developer's share and tells the developer).
LINE_REFUNDED_HOOKS: list = []
# Functions (line_ids) -> the ids among them that an open claim still holds (refunds: a
# request in review), so that what was paid for them is not yet final.
LINE_HOLDS: list = []
# The refund policy's advice for apps above billing that may not import refunds:
# REFUND_ADVISOR["terms"](kind, refund_days=, trial_days=) -> plain words;
# REFUND_ADVISOR["outlook"](account, lines, on) -> {line id: Decision}.
REFUND_ADVISOR: dict = {}


def lines_held(line_ids) -> set[int]:
    held: set[int] = set()
    for hook in LINE_HOLDS:
        held |= set(hook(line_ids))
    return held
