"""python manage.py refund_mail ACTION ...

  parse FILE.eml [...] [--json]   what the parser reads from each mail, storing nothing
  fetch --maildir PATH | --mbox PATH | --imap URL [--limit N]
                                  store each mail, then remove it from its mailbox

Each action is a subcommand: `add_<action>_arguments(parser)` declares its options and
`handle_<action>(options)` runs it. Exit status of `parse`: 0, or 2 when a file could
not be read (the others are still printed). Of `fetch`: 0; 1 when a mail could not be
stored (it stays in the mailbox) or the IMAP server failed; 2 for a bad path or URL.
"""

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from inbox.commands import add_fetch_arguments, run_fetch
from refunds.mail.parse import parse
from refunds.mail.types import ParsedMail
from refunds.policy.types import REASON_LABELS


class Command(BaseCommand):
    help = "Refund requests by email."
    requires_system_checks = []

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
        self.add_parse_arguments(
            actions.add_parser(
                "parse",
                help="print what the parser reads from .eml files (stores nothing)",
                description="Print what the parser reads from each mail: order number, "
                "names, emails, payment date, amount, method, reason, attachments, and "
                "why anything is missing.",
            )
        )
        self.add_fetch_arguments(
            actions.add_parser(
                "fetch",
                help="store the mails of a Maildir, an mbox or an IMAP folder",
                description="Store each mail (once per Message-ID) and decide what it "
                "becomes; a mail leaves its mailbox only once stored. Prints the counts.",
            )
        )

    def add_parse_arguments(self, parser):
        parser.add_argument("files", nargs="+", metavar="FILE.eml")
        parser.add_argument("--json", action="store_true", help="print a JSON list")

    def add_fetch_arguments(self, parser):
        add_fetch_arguments(parser)

    def handle(self, *args, **options):
        return getattr(self, f"handle_{options['action']}")(options)

    def handle_parse(self, options):
        results, unreadable = [], []
        for name in options["files"]:
            try:
                raw = Path(name).read_bytes()
            except OSError as exc:
                unreadable.append(name)
                self.stderr.write(f"Cannot read {name}: {exc.strerror or exc}")
                continue
            results.append((name, parse(raw)))
        if options["json"]:
            data = [{"file": name, **parsed.as_dict()} for name, parsed in results]
            self.stdout.write(json.dumps(data, indent=2, ensure_ascii=False))
        else:
            for index, (name, parsed) in enumerate(results):
                if index:
                    self.stdout.write("")
                self.stdout.write("\n".join(_describe(name, parsed)))
        if unreadable:
            raise CommandError(f"Could not read: {', '.join(unreadable)}", returncode=2)

    def handle_fetch(self, options):
        run_fetch(options, mailbox="refunds", stdout=self.stdout)


def _describe(name: str, mail: ParsedMail) -> list[str]:
    def row(label: str, value) -> str:
        return f"  {label + ':':<16}{value if value not in (None, '', ()) else '-'}"

    sender = mail.sender_email or "-"
    if mail.sender_name:
        sender = f"{mail.sender_name} <{sender}>"
    reason = mail.reason_code
    if reason:
        reason = f"{reason} ({REASON_LABELS.get(reason, reason)})"
    amount = None
    if mail.amount is not None:
        amount = f"{mail.amount} {mail.currency or '(no currency)'}"
    lines = [
        name,
        row("subject", mail.subject),
        row("from", sender),
        row("message id", mail.message_id),
        row("references", ", ".join(mail.references)),
        row("automatic", f"yes: {mail.auto_reason}" if mail.is_auto else "no"),
        row("refund subject", "yes" if mail.is_refund_subject else "no"),
        row("request number", mail.request_number),
        row("order number", mail.order_number),
        row("names", ", ".join(mail.names)),
        row("emails", ", ".join(mail.emails)),
        row("payment date", mail.payment_date.isoformat() if mail.payment_date else None),
        row("amount", amount),
        row("method", mail.method),
        row("reason", reason),
        row("reason text", mail.reason_text),
    ]
    if mail.attachments:
        lines.append("  attachments:")
        lines += [f"    {a.name} ({a.content_type}, {a.size} bytes)" for a in mail.attachments]
    else:
        lines.append(row("attachments", None))
    body = mail.body.splitlines()
    lines.append(f"  body:           {len(mail.body)} characters")
    lines += [f"    | {line}"[:200] for line in body[:12]]
    if len(body) > 12:
        lines.append(f"    | ... {len(body) - 12} more lines")
    if mail.problems:
        lines.append("  missing or odd:")
        lines += [f"    - {problem}" for problem in mail.problems]
    else:
        lines.append(row("missing or odd", "nothing"))
    return lines
