#!/usr/bin/env python
"""Refund mails parsed and stored per second by one process.

    .venv/bin/python bench/mail_intake.py [--mails 500]

Builds N varied mails from the .eml files of tests/refunds/mail/eml (each given a
unique Message-ID; files over 1 MB are left out) and hands each to
inbox.services.mail_receive (the billing mailbox) in a throwaway test database (SQLite in memory, or
the PostgreSQL of DATABASE_URL), the raw mails written to a temporary folder as in
production. Two runs: stored only (the decision step skipped), then stored and
processed, where one mail in five is a complete request from an account's owner and
becomes a refund request. Replies and acknowledgements are sent in-process (the test
settings run Celery tasks eagerly), so the processed figure includes them.
Target: at least 100 mails per second.
"""

import argparse
import gc
import logging
import os
import re
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")

import django

django.setup()

from django.db import connection  # noqa: E402
from django.test.utils import override_settings  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

from tests.mailtools import AUTHSERV, auth_results  # noqa: E402

EML = ROOT / "tests" / "refunds" / "mail" / "eml"
MAX_TEMPLATE = 1024 * 1024
HEADER_END = re.compile(rb"\r?\n\r?\n")
MESSAGE_ID = re.compile(rb"^message-id:[^\n]*\n(?:[ \t][^\n]*\n)*", re.IGNORECASE | re.MULTILINE)


def _fallback_templates() -> list[bytes]:
    """A few mails of the usual shapes, should the .eml folder be empty."""
    shapes = [
        ("text", "Refund request — Order #ORD-2026-000001", "Reason: charged twice.", "utf-8"),
        (
            "html",
            "Re: refund request - order 2026-000002",
            "<p>Paid on 3 March, $49.00</p>",
            "utf-8",
        ),
        (
            "text",
            "AW: Rückerstattung",
            "Grund: doppelt belastet. Betrag: 49 EUR, Überweisung",
            "latin-1",
        ),
        ("text", "Out of office", "I am away.", "utf-8"),
    ]
    mails = []
    for kind, subject, body, charset in shapes:
        message = EmailMessage()
        message["From"] = "Someone <someone@customer.example>"
        message["To"] = "billing@vendor.example"
        message["Subject"] = subject
        if kind == "html":
            message.set_content(body, subtype="html", charset=charset, cte="base64")
        else:
            message.set_content(body, charset=charset, cte="quoted-printable")
        mails.append(message.as_bytes())
    return mails


def templates() -> list[bytes]:
    found = [
        path.read_bytes()
        for path in sorted(EML.glob("*.eml"))
        if path.stat().st_size <= MAX_TEMPLATE
    ]
    return found or _fallback_templates()


def with_message_id(raw: bytes, message_id: str) -> bytes:
    """The same mail under a new Message-ID (the old one dropped from the header)."""
    match = HEADER_END.search(raw)
    head, body = (raw[: match.start()], raw[match.start() :]) if match else (raw, b"")
    head = MESSAGE_ID.sub(b"", head + b"\n")[:-1]
    return f"Message-ID: <{message_id}>\r\n".encode() + head + body


def complete_request(order, owner, n: int) -> bytes:
    wordings = [
        f"Name: {owner.get_full_name()}\nOrder: {order.number}\n"
        "Paid on 2 March 2026, $149.00 by Visa.\nReason: we were charged twice for it.\n",
        f"Hello, please refund order {order.number}. We paid 149 USD by card on 2 March.\n"
        "Reason: the plugin does not work with our version.\n\nThanks,\n-- \nThe team",
    ]
    message = EmailMessage()
    message["From"] = f"{owner.get_full_name()} <{owner.email}>"
    message["To"] = "billing@vendor.example"
    message["Subject"] = f"Refund request — Order #{order.number}"
    message["Message-ID"] = f"<bench-request-{n}@customer.example>"
    # The receiving server vouches for the sender (inbox.proof): the request is filed.
    message["Authentication-Results"] = auth_results(owner.email)
    message.set_content(wordings[n % len(wordings)])
    return message.as_bytes()


def customers(count: int):
    """Accounts that bought credits and a plugin on 2 March, paid by bank transfer."""
    from decimal import Decimal

    from django.contrib.auth.models import Group

    from billing import services
    from billing.models import Price, Product
    from tests.factories import AccountFactory, UserFactory, owner_of

    staff = UserFactory(is_staff=True)
    staff.groups.add(Group.objects.get(name="Billing reviewer"))
    prices = []
    for code, kind, amount, extra in (
        ("credits", "credit_pack", "100", {"units": 1000}),
        ("plugin", "plugin", "49", {}),
    ):
        product = Product.objects.create(code=code, name=code.title(), kind=kind, **extra)
        prices.append(
            Price.objects.create(
                product=product, currency="USD", amount=Decimal(amount), interval="one_off"
            )
        )
    when = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    for _ in range(count):
        account = AccountFactory(timezone="America/New_York")
        order = services.purchase_place(
            actor=owner_of(account),
            account=account,
            items=[{"price": price.pk} for price in prices],
            now=when,
        )
        services.payment_record_manual(actor=staff, order=order, reference="BANK-1", now=when)
        yield order, owner_of(account)


def run(mails: list[bytes]) -> float:
    from inbox.services import mail_receive

    started = time.perf_counter()
    for raw in mails:
        mail_receive(raw=raw, source="bench", mailbox="refunds")
    return time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mails", type=int, default=500)
    args = parser.parse_args()

    from inbox import services as intake
    from inbox.models import InboundMail
    from refunds.models import RefundRequest

    logging.getLogger("celery").setLevel(logging.WARNING)  # a line per eager task
    logging.getLogger("kombu").setLevel(logging.ERROR)

    shapes = templates()
    old_name = connection.creation.create_test_db(verbosity=0, keepdb=False)
    media = tempfile.TemporaryDirectory(prefix="mail-bench-")
    storages = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    try:
        with override_settings(
            STORAGES=storages,
            MEDIA_ROOT=media.name,
            REFUND_POLICY="acelle",
            MAIL_TRUSTED_AUTHSERV_IDS=[AUTHSERV],
        ):
            print(f"database: {connection.vendor}; {len(shapes)} template mails")
            # Stored only: the decision step is skipped.
            real_process = intake.mail_process
            intake.mail_process = lambda mail, **kwargs: None
            try:
                warm = [with_message_id(raw, f"warm-{i}@bench") for i, raw in enumerate(shapes)]
                run(warm)
                mails = [
                    with_message_id(shapes[i % len(shapes)], f"stored-{i}@bench")
                    for i in range(args.mails)
                ]
                gc.collect()
                seconds = run(mails)
            finally:
                intake.mail_process = real_process
            print(
                f"stored only: {args.mails} mails in {seconds:.2f} s, "
                f"{args.mails / seconds:.0f} mails/s (target: >= 100/s)"
            )

            # Stored and processed: one mail in five a complete request.
            requests = args.mails // 5
            people = list(customers(requests))
            mails = [
                with_message_id(shapes[i % len(shapes)], f"processed-{i}@bench")
                for i in range(args.mails - requests)
            ]
            for n, (order, owner) in enumerate(people):
                mails.insert(n * 5, complete_request(order, owner, n))
            before = set(InboundMail.objects.values_list("pk", flat=True))
            gc.collect()
            seconds = run(mails)
            outcome = Counter(
                InboundMail.objects.exclude(pk__in=before).values_list("status", flat=True)
            )
            print(
                f"stored and processed: {args.mails} mails in {seconds:.2f} s, "
                f"{args.mails / seconds:.0f} mails/s (target: >= 100/s); "
                f"{RefundRequest.objects.count()} refund requests, "
                + ", ".join(f"{count} {status}" for status, count in sorted(outcome.items()))
            )
    finally:
        media.cleanup()
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
