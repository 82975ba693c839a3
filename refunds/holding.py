"""Files a customer attached to the refund form, kept across the preview: stored under
refund-held/ in the default storage, listed in their session for one order, for an
hour. Send re-checks and attaches them like fresh uploads; then they are dropped."""

import secrets
from datetime import timedelta

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from accounts.uploads import safe_filename

SESSION_KEY = "refund_held"
KEEP_FOR = timedelta(hours=1)


def _entries(session, order_id: int) -> list[dict]:
    """The order's held files still fresh; stale ones are removed from storage."""
    held = session.get(SESSION_KEY, {})
    now = timezone.now().timestamp()
    fresh, stale = [], []
    for entry in held.get(str(order_id), []):
        (fresh if now - entry["at"] < KEEP_FOR.total_seconds() else stale).append(entry)
    for entry in stale:
        default_storage.delete(entry["path"])
    if stale:
        _store(session, order_id, fresh)
    return fresh


def _store(session, order_id: int, entries: list[dict]) -> None:
    held = dict(session.get(SESSION_KEY, {}))
    if entries:
        held[str(order_id)] = entries
    else:
        held.pop(str(order_id), None)
    session[SESSION_KEY] = held


def held_names(session, order_id: int) -> list[str]:
    return [entry["name"] for entry in _entries(session, order_id)]


def hold(session, order_id: int, checked) -> None:
    """Keep checked uploads ((upload, name, content type, bytes), accounts.uploads
    .files_check) beside those already held for the order."""
    entries = _entries(session, order_id)
    for _upload, name, _content_type, content in checked:
        path = default_storage.save(
            f"refund-held/{secrets.token_hex(12)}-{safe_filename(name)}", ContentFile(content)
        )
        entries.append({"name": name, "path": path, "at": timezone.now().timestamp()})
    _store(session, order_id, entries)


def held_files(session, order_id: int) -> list[SimpleUploadedFile]:
    """The held files as uploads, to be checked and attached again; one gone from storage
    is left out."""
    files = []
    for entry in _entries(session, order_id):
        if default_storage.exists(entry["path"]):
            with default_storage.open(entry["path"], "rb") as stored:
                files.append(SimpleUploadedFile(entry["name"], stored.read()))
    return files


def release(session, order_id: int) -> None:
    for entry in _entries(session, order_id):
        default_storage.delete(entry["path"])
    _store(session, order_id, [])


def purge(now=None) -> int:
    """Held files whose customer never came back, older than KEEP_FOR: deleted (beat)."""
    now = now or timezone.now()
    try:
        _folders, names = default_storage.listdir("refund-held")
    except (FileNotFoundError, NotImplementedError):
        return 0
    removed = 0
    for name in names:
        path = f"refund-held/{name}"
        try:
            stored_at = default_storage.get_modified_time(path)
        except (FileNotFoundError, NotImplementedError):
            continue
        if now - stored_at > KEEP_FOR:
            default_storage.delete(path)
            removed += 1
    return removed
