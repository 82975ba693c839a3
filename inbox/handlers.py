"""Each mailbox's handler, registered by the app that owns it (in its AppConfig.ready):

    from inbox.handlers import Handler, register
    register(Handler(mailbox="support", handle=..., confirm=..., accept=...))

- handle(mail, message, now): decide what the stored mail becomes. It runs inside the
  transaction that records the outcome (services.mail_settle / mail_answer), so the
  outcome, its answer and what it created commit together or not at all.
- confirm(mail, user, now) -> url: an unproven mail awaiting confirmation, confirmed by
  a signed-in user of the account; raises PortalError when that user may not.
- accept(mail, staff, now): staff accept a held (unproven) reply.
- describe(mail) -> str: what confirming does, to end a sentence ("file a refund request
  for ORD-2026-000004").
- complete_view(model_admin, request, mail): the staff console's "complete" page.
- batch(messages) -> context manager: entered around the handling of a batch of mails
  (services.mail_process_many, in its transaction), for what the handler can read once
  for all of them (their senders' users, say) rather than once per mail.
"""

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Handler:
    mailbox: str
    handle: Callable
    confirm: Callable | None = None
    accept: Callable | None = None
    describe: Callable | None = None
    complete_view: Callable | None = None
    batch: Callable | None = None


HANDLERS: dict[str, Handler] = {}


def register(handler: Handler) -> None:
    HANDLERS[handler.mailbox] = handler


def handler_for(mailbox: str) -> Handler:
    try:
        return HANDLERS[mailbox]
    except KeyError:
        raise LookupError(f"No handler is registered for the {mailbox} mailbox.") from None
