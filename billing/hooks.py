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
