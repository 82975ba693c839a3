"""Row locks on money state, taken in one order by billing, refunds and support alike.

The order:

    account → the app's own row (a refund request and its payouts, an incident)
            → billing's rows of that account (subscription, order, lines, payment,
              licence)

The account comes first, always, and is held to the end of the transaction: it
serialises every change to one account's money (its ledger, orders, payments, seats,
refunds, incidents). No transaction locks two accounts, but two:

- a chunk of renewals (billing.services.subscriptions._renew_together) locks all its
  accounts in one statement, in id order, before any other row, so two chunks take them
  in the same order, and a change of one account never waits for a second account while
  holding the first;
- a batch of inbound mails (inbox.services.mail_process_many) locks the account of each
  mail that files a request or opens an incident, in the mails' order, which it cannot
  know before. Against a renewal chunk holding two of those accounts in the other order
  it can deadlock: PostgreSQL then cancels one of the two transactions, and that one is
  redone one row at a time (the chunk one renewal per transaction, the batch one mail
  per transaction), each locking one account. Nothing is lost; both are slower, once. So two changes of one account never interleave, and below the account they
cannot wait on each other: billing's rows
are locked in the order each use case meets them (an order before the subscription it
renews, the lines a refund paid back before the subscription they paid for). Jobs and
sweeps that change one row of an account (a deadline reminder, an incident's breach)
take the account's lock first too.

The apps' hooks (billing.hooks: an order paid, a subscription moved, a line refunded)
run inside billing's transaction, after billing has locked its rows, and may then lock
their own row (the marketplace's installation). That is the one exception to the order
above, and it cannot deadlock: every path to those rows holds the account's lock first.

Every lock is `SELECT ... FOR NO KEY UPDATE` inside the caller's transaction
(`transaction.atomic()`): as exclusive as FOR UPDATE between writers, but it lets a
transaction that holds a row below check its foreign key to the locked row (PostgreSQL
takes KEY SHARE for that at commit; FOR UPDATE would make the two wait for each other).
Each takes the row or its primary key.
"""

from accounts.models import Account

from .models import Licence, Order, OrderLine, Payment, Subscription


def _pk(row) -> int:
    return row if isinstance(row, int) else row.pk


def lock_account(account: Account | int) -> Account:
    """The account's row, fresh and locked: first, before any other row of it."""
    return Account.objects.select_for_update(no_key=True).get(pk=_pk(account))


def lock_subscription(subscription: Subscription | int) -> Subscription:
    """The subscription's row only (its joins are nullable), with its price and product."""
    return (
        Subscription.objects.select_for_update(of=("self",), no_key=True)
        .select_related("price__product", "account__reseller")
        .get(pk=_pk(subscription))
    )


def lock_order(order: Order | int) -> Order:
    return Order.objects.select_for_update(no_key=True).get(pk=_pk(order))


def lock_order_lines(ids) -> dict[int, OrderLine]:
    """Several lines of one account at once, in id order (so two callers agree)."""
    rows = (
        OrderLine.objects.select_for_update(of=("self",), no_key=True)
        .select_related("order", "product")
        .filter(pk__in=list(ids))
        .order_by("pk")
    )
    return {line.pk: line for line in rows}


def lock_payment(payment: Payment | int) -> Payment:
    return Payment.objects.select_for_update(no_key=True).get(pk=_pk(payment))


def lock_licence(licence: Licence | int) -> Licence:
    return Licence.objects.select_for_update(no_key=True).get(pk=_pk(licence))
