# Mail to billing moves to the one mail store of inbox (issue 14: one mail intake).

from django.db import migrations

FIELDS = [
    "message_id", "source", "raw", "size", "sender", "subject", "status", "reasons",
    "parsed", "answered_at", "received_at", "resolved_by_id", "resolved_at",
]


def copy_mail(apps, schema_editor):
    Old = apps.get_model("refunds", "InboundMail")
    New = apps.get_model("inbox", "InboundMail")
    batch = []
    for mail in Old.objects.select_related("request").order_by("pk").iterator():
        row = New(mailbox="refunds", **{name: getattr(mail, name) for name in FIELDS})
        if mail.request is not None:
            row.thread, row.account_id = mail.request.number, mail.request.account_id
        batch.append(row)
        if len(batch) >= 500:
            New.objects.bulk_create(batch)
            batch = []
    New.objects.bulk_create(batch)


def copy_back(apps, schema_editor):
    Old = apps.get_model("refunds", "InboundMail")
    New = apps.get_model("inbox", "InboundMail")
    Request = apps.get_model("refunds", "RefundRequest")
    statuses = {"opened": "request", "confirm": "triage", "held": "triage", "answered": "triage",
                "ignored": "auto"}
    for mail in New.objects.filter(mailbox="refunds").order_by("pk").iterator():
        Old.objects.create(
            request=Request.objects.filter(number=mail.thread).first() if mail.thread else None,
            **{name: getattr(mail, name) for name in FIELDS if name != "status"},
            status=statuses.get(mail.status, mail.status),
        )


class Migration(migrations.Migration):

    dependencies = [
        ('refunds', '0005_backfill_line_refunds'),
        ('inbox', '0001_initial'),
    ]

    operations = [
        migrations.RunPython(copy_mail, copy_back),
        migrations.DeleteModel(
            name='InboundMail',
        ),
    ]
