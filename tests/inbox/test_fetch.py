"""Fetching: Maildir, mbox and IMAP hand each mail to the save service, and a mail
leaves its mailbox only once stored."""

import io
import mailbox
import os
import subprocess
import sys
from collections import Counter
from email.message import EmailMessage
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from inbox import fetch, services, tasks
from inbox.models import InboundMail
from refunds.models import RefundRequest
from tests.factories import UserFactory, owner_of
from tests.mailtools import auth_results, trusted_mx  # noqa: F401  (a fixture)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("trusted_mx")]

EML = Path(__file__).parent.parent / "refunds" / "mail" / "eml"


def build(*, sender, subject, body, message_id, headers=None):
    message = EmailMessage()
    message["From"] = sender
    message["To"] = "billing@vendor.example"
    message["Subject"] = subject
    message["Message-ID"] = message_id
    message["Authentication-Results"] = auth_results(sender)
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(body)
    return message.as_bytes()


@pytest.fixture
def customer(paid_order, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    account, order = paid_order()
    return order, owner_of(account)


@pytest.fixture
def inbox(customer):
    """Six mails in the order they arrived: a complete request, its reply, one without
    an order, one from a stranger, an out-of-office, and the first one again."""
    order, owner = customer
    UserFactory(email="stranger@else.example")
    request = build(
        sender=f"{owner.get_full_name()} <{owner.email}>",
        subject=f"Refund request — Order #{order.number}",
        body=f"Name: {owner.get_full_name()}\nOrder: {order.number}\n"
        "Paid on 2 March 2026, $149.00 by Visa.\nReason: we were charged twice for it.\n",
        message_id="<request@customer.example>",
    )
    return [
        request,
        build(
            sender=owner.email,
            subject=f"Re: Refund request — Order #{order.number}",
            body="The statement is on its way.\n\nOn Monday, billing wrote:\n> Thanks",
            message_id="<reply@customer.example>",
            headers={"In-Reply-To": "<request@customer.example>"},
        ),
        build(
            sender=owner.email,
            subject="Money back please",
            body="Reason: the plugin is broken.",
            message_id="<no-order@customer.example>",
        ),
        build(
            sender="stranger@else.example",
            subject=f"Refund request - Order #{order.number}",
            body="Reason: we no longer need it.",
            message_id="<stranger@else.example>",
        ),
        build(
            sender=owner.email,
            subject="Out of office",
            body="I am away until Monday.",
            message_id="<ooo@customer.example>",
            headers={"Auto-Submitted": "auto-replied"},
        ),
        request,  # delivered twice
    ]


EXPECTED = {"stored": 5, "duplicates": 1, "failed": 0}
STATUSES = {"request": 1, "reply": 1, "triage": 2, "auto": 1}


def statuses(source):
    return dict(Counter(InboundMail.objects.filter(source=source).values_list("status", flat=True)))


def make_maildir(path, mails):
    """Written by hand, names in arrival order (as a delivery agent names them)."""
    box = mailbox.Maildir(path, create=True)
    box.close()
    for i, raw in enumerate(mails):
        folder = "cur" if i % 2 else "new"  # read mails sit in cur/ with flags
        name = f"{1_770_000_000 + i}.M{i}P1Q{i}.test" + (":2,S" if folder == "cur" else "")
        (path / folder / name).write_bytes(raw)
    return path


def make_mbox(path, mails):
    box = mailbox.mbox(path, create=True)
    box.lock()
    for raw in mails:
        box.add(raw)
    box.close()
    return path


def left_in_maildir(path):
    return sorted(os.listdir(path / "new") + os.listdir(path / "cur"))


def test_a_maildir_is_fetched_into_requests_replies_and_triage_then_emptied(inbox, tmp_path):
    box = make_maildir(tmp_path / "Maildir", inbox)
    assert fetch.fetch_maildir(box, mailbox="refunds") == EXPECTED
    assert statuses("maildir") == STATUSES
    request = RefundRequest.objects.get()
    assert InboundMail.objects.filter(thread=request.number).count() == 2  # and its reply
    assert left_in_maildir(box) == []
    # Nothing is left to fetch: a second run stores nothing.
    assert fetch.fetch_maildir(box, mailbox="refunds") == {
        "stored": 0,
        "duplicates": 0,
        "failed": 0,
    }
    assert InboundMail.objects.count() == 5


def test_an_mbox_is_fetched_the_same_and_rewritten_empty(inbox, tmp_path):
    path = make_mbox(tmp_path / "billing.mbox", inbox)
    assert fetch.fetch_mbox(path, mailbox="refunds") == EXPECTED
    assert statuses("mbox") == STATUSES
    assert len(mailbox.mbox(path)) == 0 and path.stat().st_size == 0
    assert not Path(f"{path}.lock").exists()
    assert fetch.fetch_mbox(path, mailbox="refunds") == {"stored": 0, "duplicates": 0, "failed": 0}


def fail_on(monkeypatch, marker: bytes):
    """The mail holding `marker` cannot be stored (its file, say): nor can a batch that
    holds it, which the fetch then hands over one mail at a time."""
    real, real_many = services.mail_receive, services.mail_receive_many

    def receive(*, raw, source, mailbox, now=None):
        if marker in raw:
            raise RuntimeError("disk full")
        return real(raw=raw, source=source, mailbox=mailbox, now=now)

    def receive_many(raws, *, source, mailbox, now=None):
        if any(marker in raw for raw in raws):
            raise RuntimeError("disk full")
        return real_many(raws, source=source, mailbox=mailbox, now=now)

    monkeypatch.setattr(services, "mail_receive", receive)
    monkeypatch.setattr(services, "mail_receive_many", receive_many)


def test_a_mail_that_cannot_be_stored_stays_in_the_maildir_and_the_rest_go_on(
    inbox, tmp_path, monkeypatch, caplog
):
    box = make_maildir(tmp_path / "Maildir", inbox)
    fail_on(monkeypatch, b"<no-order@customer.example>")
    assert fetch.fetch_maildir(box, mailbox="refunds") == {
        "stored": 4,
        "duplicates": 1,
        "failed": 1,
    }
    assert "could not be stored; left in the mailbox" in caplog.text
    [left] = left_in_maildir(box)
    assert b"<no-order@customer.example>" in next(box.rglob(left)).read_bytes()
    monkeypatch.undo()
    assert fetch.fetch_maildir(box, mailbox="refunds") == {
        "stored": 1,
        "duplicates": 0,
        "failed": 0,
    }
    assert left_in_maildir(box) == [] and statuses("maildir") == STATUSES


def test_a_mail_that_cannot_be_stored_stays_in_the_mbox(inbox, tmp_path, monkeypatch):
    path = make_mbox(tmp_path / "billing.mbox", inbox)
    fail_on(monkeypatch, b"<stranger@else.example>")
    assert fetch.fetch_mbox(path, mailbox="refunds") == {"stored": 4, "duplicates": 1, "failed": 1}
    [left] = mailbox.mbox(path)
    assert left["Message-ID"] == "<stranger@else.example>"
    monkeypatch.undo()
    assert fetch.fetch_mbox(path, mailbox="refunds")["stored"] == 1 and len(mailbox.mbox(path)) == 0


def test_a_run_cut_short_keeps_only_the_unstored_mails(inbox, tmp_path):
    path = make_mbox(tmp_path / "billing.mbox", inbox)
    assert fetch.fetch_mbox(path, mailbox="refunds", limit=2) == {
        "stored": 2,
        "duplicates": 0,
        "failed": 0,
    }
    assert len(mailbox.mbox(path)) == 4
    box = make_maildir(tmp_path / "Maildir", inbox)
    # The first two are in the database already: duplicates, and removed all the same.
    assert fetch.fetch_maildir(box, mailbox="refunds", limit=3) == {
        "stored": 1,
        "duplicates": 2,
        "failed": 0,
    }
    assert len(left_in_maildir(box)) == 3


def test_the_eml_folder_goes_through_a_maildir_without_a_loss(tmp_path, settings):
    files = sorted(EML.glob("*.eml"))
    if not files:
        pytest.skip("no .eml files yet")
    settings.MEDIA_ROOT = str(tmp_path / "media")
    box = make_maildir(tmp_path / "Maildir", [f.read_bytes() for f in files])
    counts = fetch.fetch_maildir(box, mailbox="refunds")
    assert counts["failed"] == 0
    assert counts["stored"] + counts["duplicates"] == len(files)
    assert InboundMail.objects.count() == counts["stored"]
    assert left_in_maildir(box) == []


# IMAP --------------------------------------------------------------------------------


class FakeIMAP:
    """The part of imaplib.IMAP4 the fetcher uses, over a dict of UID -> raw mail."""

    def __init__(self, mails, *, uidplus=True):
        self.mails = {str(uid).encode(): raw for uid, raw in enumerate(mails, start=1)}
        self.deleted = set()
        self.capabilities = ("IMAP4REV1", "UIDPLUS") if uidplus else ("IMAP4REV1",)
        self.log = []
        self.flagged_after_store = []

    def login(self, user, password):
        self.log.append(("LOGIN", user, password))
        return "OK", [b"logged in"]

    def capability(self):
        return "OK", [" ".join(self.capabilities).encode()]

    def select(self, folder):
        self.log.append(("SELECT", folder))
        return "OK", [str(len(self.mails)).encode()]

    def uid(self, command, *args):
        self.log.append((command, *args))
        if command == "SEARCH":
            return "OK", [b" ".join(u for u in self.mails if u not in self.deleted)]
        if command == "FETCH":
            uid = args[0]
            raw = self.mails[uid]
            return "OK", [(b"%s (UID %s BODY[] {%d}" % (uid, uid, len(raw)), raw), b")"]
        if command == "STORE":
            uid = args[0].encode()
            assert args[1:] == ("+FLAGS.SILENT", r"(\Deleted)")
            message_id = EmailMessageId.of(self.mails[uid])
            # The mail is in the database before it is flagged for deletion.
            self.flagged_after_store.append(
                InboundMail.objects.filter(message_id=message_id).exists()
            )
            self.deleted.add(uid)
            return "OK", [None]
        if command == "EXPUNGE":
            uid = args[0].encode()
            assert uid in self.deleted
            del self.mails[uid]
            return "OK", [None]
        raise AssertionError(command)

    def expunge(self):
        self.log.append(("EXPUNGE",))
        for uid in self.deleted & set(self.mails):
            del self.mails[uid]
        return "OK", [None]

    def close(self):
        self.log.append(("CLOSE",))
        return "OK", [None]

    def logout(self):
        self.log.append(("LOGOUT",))
        return "BYE", [None]


class EmailMessageId:
    @staticmethod
    def of(raw):
        from email import message_from_bytes

        return message_from_bytes(raw)["Message-ID"].strip("<>")


def connect_to(monkeypatch, server):
    seen = {}

    def connect(host, port, *, ssl_context, timeout):
        seen.update(host=host, port=port, verifies=ssl_context.check_hostname)
        return server

    monkeypatch.setattr(fetch.imaplib, "IMAP4_SSL", connect)
    return seen


@pytest.mark.parametrize("uidplus", [True, False], ids=["uidplus", "plain-expunge"])
def test_imap_flags_a_mail_deleted_only_after_it_is_stored(inbox, monkeypatch, uidplus):
    server = FakeIMAP(inbox, uidplus=uidplus)
    seen = connect_to(monkeypatch, server)
    counts = fetch.fetch_imap(
        "imaps://billing%40vendor.example:p%3Ass@mail.example/INBOX", mailbox="refunds"
    )
    assert counts == EXPECTED and statuses("imap") == STATUSES
    assert seen == {"host": "mail.example", "port": 993, "verifies": True}
    assert server.log[0] == ("LOGIN", "billing@vendor.example", "p:ss")
    assert server.flagged_after_store == [True] * 6
    # Read with PEEK (the six make one batch), then, once the batch is stored, each is
    # flagged.
    commands = [entry[0] for entry in server.log[3:]]
    per_mail = ["STORE", "EXPUNGE"] if uidplus else ["STORE"]
    tail = ["CLOSE", "LOGOUT"] if uidplus else ["EXPUNGE", "CLOSE", "LOGOUT"]
    assert commands == ["FETCH"] * 6 + per_mail * 6 + tail
    assert all(entry[2] == "(BODY.PEEK[])" for entry in server.log if entry[0] == "FETCH")
    assert server.mails == {}


def test_imap_leaves_a_mail_that_cannot_be_stored_unflagged(inbox, monkeypatch):
    server = FakeIMAP(inbox)
    connect_to(monkeypatch, server)
    fail_on(monkeypatch, b"<ooo@customer.example>")
    assert (
        fetch.fetch_imap("imaps://u:p@mail.example:1993/Billing", mailbox="refunds")["failed"] == 1
    )
    assert ("SELECT", '"Billing"') in server.log
    assert list(server.mails) == [b"5"] and b"5" not in server.deleted


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("pop3://u:p@mail.example/", "must start with imaps://"),
        ("imaps://mail.example/INBOX", "needs the login"),
        ("imaps://u:p@/INBOX", "names no host"),
        ("imaps://u:p@mail.example:nope/INBOX", "port is not a number"),
    ],
)
def test_a_bad_imap_url_is_refused_without_showing_the_password(url, message):
    with pytest.raises(fetch.FetchError, match=message) as caught:
        fetch.fetch_imap(url, mailbox="refunds")
    assert ":p@" not in str(caught.value)


# The command, the task and the schedule -----------------------------------------------


def test_the_command_prints_the_counts(inbox, tmp_path):
    box = make_maildir(tmp_path / "Maildir", inbox)
    out = io.StringIO()
    call_command("refund_mail", "fetch", "--maildir", str(box), stdout=out)
    assert "5 stored, 1 duplicates, 0 failed" in out.getvalue()
    path = make_mbox(tmp_path / "billing.mbox", inbox[:1])
    call_command("refund_mail", "fetch", "--mbox", str(path), stdout=out)
    assert "0 stored, 1 duplicates, 0 failed" in out.getvalue()


@pytest.mark.parametrize("option", ["--maildir", "--mbox"])
def test_the_command_refuses_a_bad_path_with_status_2(tmp_path, option):
    with pytest.raises(CommandError, match="is not a") as caught:
        call_command("refund_mail", "fetch", option, str(tmp_path / "nowhere"))
    assert caught.value.returncode == 2


def test_the_command_exits_1_when_a_mail_was_left(inbox, tmp_path, monkeypatch):
    box = make_maildir(tmp_path / "Maildir", inbox)
    fail_on(monkeypatch, b"<ooo@customer.example>")
    out = io.StringIO()
    with pytest.raises(CommandError, match="1 mail") as caught:
        call_command("refund_mail", "fetch", "--maildir", str(box), stdout=out)
    assert caught.value.returncode == 1 and "4 stored, 1 duplicates, 1 failed" in out.getvalue()


def test_the_task_fetches_the_configured_mailbox_once_at_a_time(settings, monkeypatch):
    calls = []
    monkeypatch.setattr(
        fetch,
        "fetch_imap",
        lambda url, mailbox, limit: calls.append((url, mailbox)) or {"stored": 0},
    )
    settings.REFUND_MAIL_IMAP_URL = ""
    assert tasks.fetch_imap_task("refunds") == {}
    settings.REFUND_MAIL_IMAP_URL = "imaps://u:p@mail.example/INBOX"
    settings.SUPPORT_MAIL_IMAP_URL = "imaps://u:p@mail.example/Support"
    assert tasks.fetch_imap_task("refunds") == {"stored": 0}
    assert tasks.fetch_imap_task("support") == {"stored": 0}
    assert calls == [
        ("imaps://u:p@mail.example/INBOX", "refunds"),
        ("imaps://u:p@mail.example/Support", "support"),
    ]
    from django.core.cache import cache

    cache.add("inbox:imap-fetch:refunds", 1)
    assert "skipped" in tasks.fetch_imap_task("refunds") and len(calls) == 2


@pytest.mark.parametrize("url", ["", "imaps://u:p@mail.example/INBOX"])
def test_the_beat_runs_the_fetch_only_when_imap_is_configured(url):
    code = (
        "import django; django.setup()\n"
        "from django.conf import settings\n"
        "from config.celery import app\n"
        "app.loader.import_default_modules()\n"
        "print(settings.CELERY_BEAT_SCHEDULE.get('fetch-refunds-mail'))\n"
        "print('inbox.tasks.fetch_imap_task' in app.tasks)\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.local"}
    env.update(REFUND_MAIL_IMAP_URL=url, MAIL_FETCH_SECONDS="120")
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    entry, registered = result.stdout.strip().splitlines()[-2:]
    expected = "{'task': 'inbox.tasks.fetch_imap_task', 'schedule': 120, 'args': ('refunds',)}"
    assert entry == (expected if url else "None") and registered == "True"
