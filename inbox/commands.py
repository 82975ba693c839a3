"""The `fetch` action of the mailbox commands (refund_mail, support_mail): one set of
options and one run for every mailbox."""

import imaplib

from django.core.management.base import CommandError

from . import fetch


def add_fetch_arguments(parser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--maildir", metavar="PATH", help="a Maildir folder (cur/, new/)")
    source.add_argument("--mbox", metavar="PATH", help="an mbox file (locked while read)")
    source.add_argument(
        "--imap",
        metavar="URL",
        help="imaps://user:password@host:993/INBOX (special characters percent-encoded)",
    )
    parser.add_argument("--limit", type=int, metavar="N", help="at most N mails this run")


def run_fetch(options, *, mailbox: str, stdout, done: str = "stored") -> None:
    """Fetch from the source the options name and print the counts. Exit status: 0; 1
    when a mail could not be stored (it stays in the mailbox) or the IMAP server failed;
    2 for a bad path or URL."""
    if options["maildir"]:
        where, run, target = f"maildir {options['maildir']}", fetch.fetch_maildir, "maildir"
    elif options["mbox"]:
        where, run, target = f"mbox {options['mbox']}", fetch.fetch_mbox, "mbox"
    else:
        where, run, target = (
            f"imap {fetch.redact_url(options['imap'])}",
            fetch.fetch_imap,
            "imap",
        )
    try:
        counts = run(options[target], mailbox=mailbox, limit=options["limit"])
    except fetch.FetchError as exc:
        raise CommandError(str(exc), returncode=2) from exc
    except (imaplib.IMAP4.error, OSError) as exc:
        raise CommandError(f"{where}: {exc}", returncode=1) from exc
    stdout.write(
        f"{where}: {counts['stored']} {done}, {counts['duplicates']} duplicates, "
        f"{counts['failed']} failed"
    )
    if counts["failed"]:
        raise CommandError(
            f"{counts['failed']} mail(s) could not be {done} and stay in the mailbox "
            "(see the log).",
            returncode=1,
        )
