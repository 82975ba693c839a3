"""python manage.py support_mail fetch --maildir PATH | --mbox PATH | --imap URL [--limit N]

Stores each mail of the support mailbox once (inbox: one mail store for every mailbox)
and hands it to support's handler (support.mail), oldest first; a mail leaves its
mailbox only once its row is committed. A mail that could not be stored stays in the
mailbox for the next run. Call outside any transaction. Exit status: 0; 1 when a mail
could not be stored or the IMAP server failed; 2 for a bad path or URL.
"""

from django.core.management.base import BaseCommand

from inbox.commands import add_fetch_arguments, run_fetch


class Command(BaseCommand):
    help = "Support by email: handle the mails of the support mailbox."
    requires_system_checks = []

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
        add_fetch_arguments(
            actions.add_parser(
                "fetch",
                help="handle the mails of a Maildir, an mbox or an IMAP folder",
                description="Open, thread or answer each mail (once per Message-ID); a mail "
                "leaves its mailbox only once stored. Prints the counts.",
            )
        )

    def handle(self, *args, **options):
        run_fetch(options, mailbox="support", stdout=self.stdout, done="handled")
