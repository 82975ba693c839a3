"""One mail intake for every mailbox of the portal (billing's refunds, support).

- fetch.py: Maildir, mbox, IMAP and the anymail inbound webhook hand raw bytes to
  `services.mail_receive`; a message leaves its mailbox only once its row is committed.
- parse.py: a pure, generic read of the bytes (`read(raw) -> MailMessage`: decoding,
  charsets, threading headers, auto-replies, attachments, the new text without quoted
  history and signature). The apps read their own fields from it.
- proof.py: is the sender proven? The receiving server's Authentication-Results from a
  trusted authserv-id, or the thread's reply token.
- services.py: store once per Message-ID (the content hash when absent), then hand the
  mail to its mailbox's handler (registered by the app that owns the mailbox, see
  handlers.py). Answers are queued only once the row that says so is committed.
"""
