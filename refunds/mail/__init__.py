"""Refund requests by email, in three layers (DESIGN.md, django-helpdesk's shape):

- fetch.py: Maildir, mbox, IMAP and the anymail inbound webhook hand raw bytes to
  the save service; a message leaves its mailbox only once stored.
- parse.py: a pure function over the raw bytes (no ORM, no clock, never raises):
  `parse(raw: bytes) -> ParsedMail`.
- services in refunds/mail/intake.py: store once per Message-ID, then decide what
  the mail becomes (a request, a reply on a thread, a triage entry, nothing).
"""
