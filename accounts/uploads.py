"""Files customers send (refund evidence, mail attachments on incidents): the type is read
from the content, never from the name or the declared type, and the size and count are
bounded. One check for every app (refunds' evidence, support's attachments)."""

from typing import NamedTuple

from django.conf import settings

from .errors import PortalError

ACCEPTED_TYPES = {
    b"%PDF-": "application/pdf",
    b"\x89PNG\r\n\x1a\n": "image/png",
    b"\xff\xd8\xff": "image/jpeg",
    b"GIF87a": "image/gif",
    b"GIF89a": "image/gif",
}
ACCEPTED_WORDS = "a PDF, PNG, JPEG, GIF or plain-text file"


def safe_filename(name: str, default: str = "evidence") -> str:
    """A stored file's name part: letters, digits, dots, dashes, underscores."""
    keep = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in name)
    return keep[-80:] or default


def sniff_type(head: bytes) -> str | None:
    """The content type of a file from its first bytes, or None when it is not accepted."""
    for magic, content_type in ACCEPTED_TYPES.items():
        if head.startswith(magic):
            return content_type
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return "text/plain" if "\x00" not in text else None


class Checked(NamedTuple):
    """A file files_check accepted: its upload, name, content type (from the content) and
    bytes. Handed to files_check again, it is taken as it is: each file is read once."""

    upload: object
    name: str
    content_type: str
    content: bytes


def files_check(files, *, field: str = "evidence", default_name: str = "evidence") -> list[Checked]:
    """(upload, name, content type, bytes) of each file, or PortalError naming the first
    one refused: more than UPLOAD_MAX_FILES, larger than UPLOAD_MAX_BYTES, or of a type
    other than those accepted (the refund evidence settings name the limits). Files
    checked already (Checked, as mail_uploads gives them) are not read again."""
    files = list(files or [])
    limit = settings.REFUND_EVIDENCE_MAX_FILES
    if len(files) > limit:
        raise PortalError(f"Attach at most {limit} files.", field=field)
    return [
        upload if isinstance(upload, Checked) else _check(upload, field, default_name)
        for upload in files
    ]


def _check(upload, field: str, default_name: str) -> Checked:
    name = (getattr(upload, "name", "") or default_name)[-200:]
    if upload.size > settings.REFUND_EVIDENCE_MAX_BYTES:
        raise PortalError(
            f"{name} is larger than {settings.REFUND_EVIDENCE_MAX_BYTES // (1024 * 1024)} MB.",
            field=field,
        )
    upload.seek(0)
    content = upload.read()
    content_type = sniff_type(content[:4096]) if content else None
    if content_type is None:
        raise PortalError(f"{name} is not {ACCEPTED_WORDS}.", field=field)
    return Checked(upload, name, content_type, content)


def mail_uploads(attachments, *, field: str = "evidence") -> tuple[list[Checked], list[str]]:
    """A mail's attachments, checked: (those kept, reasons the others were refused).
    Each is checked alone, so one refused file does not refuse the rest; the services
    take the kept ones without reading them again."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    good, refused = [], []
    for attachment in attachments:
        upload = SimpleUploadedFile(attachment.name or "attachment", attachment.content)
        try:
            good.append(_check(upload, field, "evidence"))
        except PortalError as exc:
            refused.append(exc.message)
    limit = settings.REFUND_EVIDENCE_MAX_FILES
    if len(good) > limit:
        refused.append(f"Only the first {limit} attachments were kept.")
        good = good[:limit]
    return good, refused


def download(file, *, name: str, content_type: str):
    """A stored customer file as a download: never rendered inline, never cached."""
    from django.http import FileResponse, Http404

    try:
        handle = file.open("rb")
    except (FileNotFoundError, ValueError) as exc:
        raise Http404("The file is missing from storage.") from exc
    response = FileResponse(handle, as_attachment=True, filename=name, content_type=content_type)
    response["Content-Security-Policy"] = "sandbox"
    response["Cache-Control"] = "private, no-store"
    return response
