"""python manage.py support_mail fetch --maildir PATH | --mbox PATH [--limit N]

Hands each mail of the support mailbox to support.mail.support_mail_receive, oldest
first, and removes it only once it has been handled (or found handled already). A mail
that could not be handled stays in the mailbox for the next run. Call outside any
transaction. Exit status: 0; 1 when a mail could not be handled; 2 for a bad path.

refunds.mail.fetch hands its mails to the refund intake only (no callback), so the
small loop over mailbox.Maildir / mailbox.mbox lives here.
"""

import contextlib
import mailbox
import os
import re
from itertools import islice
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from support.mail import support_mail_receive

_MAILDIR_NAME = re.compile(r"^(\d+)\.(?:M(\d+))?")


def _arrival(key: str):
    """Maildir names start with the delivery time: a reply follows the mail it answers."""
    match = _MAILDIR_NAME.match(key)
    if match is None:
        return (float("inf"), 0, key)
    return (int(match.group(1)), int(match.group(2) or 0), key)


def _drain(messages, *, remove, limit=None) -> dict:
    counts = {"stored": 0, "duplicates": 0, "failed": 0}
    for key, raw in islice(messages, limit):
        received = support_mail_receive(raw=raw)  # never raises
        if received.outcome == "failed":
            counts["failed"] += 1  # logged; it stays for the next run
            continue
        remove(key)  # handled now (or already): only now may it leave the mailbox
        counts["duplicates" if received.outcome == "duplicate" else "stored"] += 1
    return counts


def fetch_maildir(path, *, limit=None) -> dict:
    root = Path(path)
    if not (root / "cur").is_dir() or not (root / "new").is_dir():
        raise CommandError(
            f"{path} is not a Maildir (it needs cur/ and new/ folders).", returncode=2
        )
    for folder in ("cur", "new"):
        if not os.access(root / folder, os.R_OK | os.W_OK | os.X_OK):
            raise CommandError(
                f"{root / folder} is not readable and writable by this user.", returncode=2
            )
    box = mailbox.Maildir(root, factory=None, create=False)

    def messages():
        for key in sorted(box.keys(), key=_arrival):
            try:
                raw = box.get_bytes(key)
            except (KeyError, FileNotFoundError):
                continue  # taken meanwhile by another fetcher
            yield key, raw

    def remove(key):
        with contextlib.suppress(KeyError, FileNotFoundError):
            box.remove(key)

    return _drain(messages(), remove=remove, limit=limit)


def fetch_mbox(path, *, limit=None) -> dict:
    """Locked while read; rewritten at the end without the mails handled."""
    file = Path(path)
    if not file.is_file():
        raise CommandError(f"{path} is not an mbox file.", returncode=2)
    if not os.access(file, os.R_OK | os.W_OK):
        raise CommandError(f"{path} is not readable and writable by this user.", returncode=2)
    box = mailbox.mbox(file, factory=None, create=False)
    try:
        box.lock()
    except mailbox.ExternalClashError as exc:
        box.close()
        raise CommandError(f"{path} is locked by another program; try again later.") from exc
    taken = []
    try:
        messages = ((key, box.get_bytes(key)) for key in list(box.iterkeys()))
        return _drain(messages, remove=taken.append, limit=limit)
    finally:
        for key in taken:
            box.remove(key)
        box.close()  # rewrites the file without them, unlocks


class Command(BaseCommand):
    help = "Support by email: handle the mails of the support mailbox."
    requires_system_checks = []

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
        fetch = actions.add_parser(
            "fetch",
            help="handle the mails of a Maildir or an mbox",
            description="Open, thread or answer each mail (once per Message-ID); a mail "
            "leaves its mailbox only once handled. Prints the counts.",
        )
        source = fetch.add_mutually_exclusive_group(required=True)
        source.add_argument("--maildir", metavar="PATH", help="a Maildir folder (cur/, new/)")
        source.add_argument("--mbox", metavar="PATH", help="an mbox file (locked while read)")
        fetch.add_argument("--limit", type=int, metavar="N", help="at most N mails this run")

    def handle(self, *args, **options):
        if options["maildir"]:
            where, counts = (
                f"maildir {options['maildir']}",
                fetch_maildir(options["maildir"], limit=options["limit"]),
            )
        else:
            where, counts = (
                f"mbox {options['mbox']}",
                fetch_mbox(options["mbox"], limit=options["limit"]),
            )
        self.stdout.write(
            f"{where}: {counts['stored']} handled, {counts['duplicates']} duplicates, "
            f"{counts['failed']} failed"
        )
        if counts["failed"]:
            raise CommandError(
                f"{counts['failed']} mail(s) could not be handled and stay in the mailbox "
                "(see the log).",
                returncode=1,
            )
