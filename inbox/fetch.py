"""The fetch layer: Maildir, mbox and IMAP hand the messages' raw bytes to the save
service for a mailbox (refunds, support), in batches (`services.mail_receive_many`), and
a message leaves its mailbox only once that has returned (the row is committed: call
these outside any transaction). A mail the save service cannot take is left where it is, logged, and
the next one goes on. Each function returns {"stored", "duplicates", "failed"}.
"""

import contextlib
import imaplib
import logging
import mailbox as stdlib_mailbox
import os
import re
import ssl
from collections.abc import Callable, Iterable
from itertools import islice
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from celery.exceptions import SoftTimeLimitExceeded

from . import services

logger = logging.getLogger(__name__)

LOOPBACK = {"localhost", "127.0.0.1", "::1"}


class FetchError(Exception):
    """A mailbox that cannot be read or emptied: a bad path or URL, a lock held."""


def batches(messages: Iterable[tuple[object, bytes]], limit: int | None):
    """The messages in batches for services.mail_receive_many: at most BATCH mails and
    BATCH_BYTES (a bigger mail goes alone), so memory stays small."""
    batch, size = [], 0
    for key, raw in islice(messages, limit):
        if batch and (len(batch) >= services.BATCH or size + len(raw) > services.BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append((key, raw))
        size += len(raw)
    if batch:
        yield batch


def drain(
    messages: Iterable[tuple[object, bytes]],
    *,
    source: str,
    mailbox: str,
    remove: Callable[[object], None],
    limit: int | None = None,
) -> dict:
    """Hand (key, raw) messages to `mailbox` in batches, and `remove` each from its
    mailbox once stored. Returns the counts."""
    counts = {"stored": 0, "duplicates": 0, "failed": 0}
    for batch in batches(messages, limit):
        try:
            outcomes = [
                created
                for _, created in services.mail_receive_many(
                    [raw for _, raw in batch], source=source, mailbox=mailbox
                )
            ]
        except SoftTimeLimitExceeded:  # the task's time is up: stop, the rest waits
            raise
        except Exception:
            logger.warning(
                "A batch of %s mails from %s could not be stored together; one by one",
                len(batch),
                source,
                exc_info=True,
            )
            outcomes = [
                _receive_one(key, raw, source=source, mailbox=mailbox) for key, raw in batch
            ]
        for (key, _), created in zip(batch, outcomes, strict=True):
            if created is None:  # it stays in the mailbox for the next run
                counts["failed"] += 1
                continue
            # Stored now (or already, for a duplicate): only now may it leave the mailbox.
            remove(key)
            counts["stored" if created else "duplicates"] += 1
    return counts


def _receive_one(key, raw: bytes, *, source: str, mailbox: str) -> bool | None:
    """mail_receive for one mail: whether it was new, None if it could not be stored."""
    try:
        _, created = services.mail_receive(raw=raw, source=source, mailbox=mailbox)
    except SoftTimeLimitExceeded:
        raise
    except Exception:
        # The ones after it go on.
        logger.exception("Mail %s from %s could not be stored; left in the mailbox", key, source)
        return None
    return created


# Maildir ----------------------------------------------------------------------------

_MAILDIR_NAME = re.compile(r"^(\d+)\.(?:M(\d+))?")


def _arrival(key: str):
    """Maildir names start with the delivery time: take mails in the order they came,
    so that a reply follows the mail it answers."""
    match = _MAILDIR_NAME.match(key)
    if match is None:
        return (float("inf"), 0, key)
    return (int(match.group(1)), int(match.group(2) or 0), key)


def fetch_maildir(path, *, mailbox: str, limit: int | None = None) -> dict:
    root = Path(path)
    if not (root / "cur").is_dir() or not (root / "new").is_dir():
        raise FetchError(f"{path} is not a Maildir (it needs cur/ and new/ folders).")
    for folder in ("cur", "new"):
        if not os.access(root / folder, os.R_OK | os.W_OK | os.X_OK):
            raise FetchError(f"{root / folder} is not readable and writable by this user.")
    box = stdlib_mailbox.Maildir(root, factory=None, create=False)

    def messages():
        for key in sorted(box.keys(), key=_arrival):  # names only: memory stays small
            try:
                raw = box.get_bytes(key)
            except (KeyError, FileNotFoundError):
                continue  # taken meanwhile by another fetcher
            yield key, raw

    def remove(key):
        with contextlib.suppress(KeyError, FileNotFoundError):  # already gone
            box.remove(key)

    return drain(messages(), source="maildir", mailbox=mailbox, remove=remove, limit=limit)


# mbox -------------------------------------------------------------------------------


def fetch_mbox(path, *, mailbox: str, limit: int | None = None) -> dict:
    """The mbox stays locked while its mails are read; at the end it is rewritten
    without the ones stored (also when the run is cut short)."""
    file = Path(path)
    if not file.is_file():
        raise FetchError(f"{path} is not an mbox file.")
    if not os.access(file, os.R_OK | os.W_OK):
        raise FetchError(f"{path} is not readable and writable by this user.")
    box = stdlib_mailbox.mbox(file, factory=None, create=False)
    try:
        box.lock()
    except stdlib_mailbox.ExternalClashError as exc:
        box.close()
        raise FetchError(f"{path} is locked by another program; try again later.") from exc
    taken = []
    try:

        def messages():
            for key in list(box.iterkeys()):  # offsets only: memory stays small
                yield key, box.get_bytes(key)

        return drain(messages(), source="mbox", mailbox=mailbox, remove=taken.append, limit=limit)
    finally:
        for key in taken:
            box.remove(key)
        box.close()  # rewrites the file without them (a copy, then a rename), unlocks


# IMAP -------------------------------------------------------------------------------


def redact_url(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return urlunsplit(
        (parts.scheme, f"{user}@{hostport}" if user else hostport, parts.path, "", "")
    )


def _imap_target(url: str) -> dict:
    parts = urlsplit(url)
    if parts.scheme not in ("imap", "imaps"):
        raise FetchError(f"{redact_url(url)}: the URL must start with imaps:// (or imap://).")
    try:
        port = parts.port
    except ValueError as exc:
        raise FetchError(f"{redact_url(url)}: the port is not a number.") from exc
    if not parts.hostname:
        raise FetchError(f"{redact_url(url)}: the URL names no host.")
    if not parts.username or parts.password is None:
        raise FetchError(
            f"{redact_url(url)}: the URL needs the login, as imaps://user:password@host/INBOX "
            "(percent-encode special characters)."
        )
    return {
        "tls": parts.scheme == "imaps",
        "host": parts.hostname,
        "port": port or (993 if parts.scheme == "imaps" else 143),
        "user": unquote(parts.username),
        "password": unquote(parts.password),
        "folder": unquote(parts.path.lstrip("/")) or "INBOX",
    }


def _quoted(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _connect(target: dict, timeout: float):
    context = ssl.create_default_context()
    if target["tls"]:
        return imaplib.IMAP4_SSL(
            target["host"], target["port"], ssl_context=context, timeout=timeout
        )
    conn = imaplib.IMAP4(target["host"], target["port"], timeout=timeout)
    if "STARTTLS" in conn.capabilities:
        conn.starttls(ssl_context=context)
    elif target["host"] not in LOOPBACK:
        conn.logout()
        raise FetchError(
            f"{target['host']} offers no STARTTLS: the password would travel in clear. "
            "Use imaps://."
        )
    return conn


def fetch_imap(url: str, *, mailbox: str, limit: int | None = None, timeout: float = 60) -> dict:
    """Each message is read with BODY.PEEK[] (it stays unseen), stored, then flagged
    \\Deleted and expunged (UID EXPUNGE where the server has UIDPLUS, else one EXPUNGE
    at the end). Messages already flagged \\Deleted are not read again."""
    target = _imap_target(url)
    conn = _connect(target, timeout)
    try:
        conn.login(target["user"], target["password"])
        typ, data = conn.select(_quoted(target["folder"]))
        if typ != "OK":
            raise FetchError(f"{redact_url(url)}: no folder {target['folder']}.")
        typ, data = conn.uid("SEARCH", None, "UNDELETED")
        uids = data[0].split() if typ == "OK" and data and data[0] else []
        # Servers often announce UIDPLUS only once logged in.
        typ, data = conn.capability()
        capabilities = data[0].decode().upper().split() if typ == "OK" and data[0] else ()
        uidplus = "UIDPLUS" in (*conn.capabilities, *capabilities)

        def messages():
            for uid in uids:
                typ, data = conn.uid("FETCH", uid, "(BODY.PEEK[])")
                raw = next((part[1] for part in data or () if isinstance(part, tuple)), None)
                if typ != "OK" or raw is None:
                    continue  # expunged meanwhile by another client
                yield uid.decode(), raw

        def remove(uid):
            typ, data = conn.uid("STORE", uid, "+FLAGS.SILENT", r"(\Deleted)")
            if typ != "OK":  # stored all the same: the next run finds it a duplicate
                logger.warning("IMAP: message %s could not be flagged deleted: %s", uid, data)
            elif uidplus:
                conn.uid("EXPUNGE", uid)

        counts = drain(messages(), source="imap", mailbox=mailbox, remove=remove, limit=limit)
        if not uidplus:
            conn.expunge()
        conn.close()
        return counts
    finally:
        with contextlib.suppress(imaplib.IMAP4.error, OSError):
            conn.logout()
