"""Two relays at once publish each job once: each locks its row and skips the other's
(PostgreSQL row locks). Skipped without PostgreSQL; CI runs it."""

import os

import pytest
from django.utils import timezone

from core import outbox
from core.models import OutboxMessage
from tests.outage_tasks import RUNS, note
from tests.races import run_together

pytestmark = [
    pytest.mark.skipif(
        not os.environ.get("DATABASE_URL", "").startswith("postgres"), reason="needs PostgreSQL"
    ),
    pytest.mark.django_db(transaction=True),
]


def test_two_relays_at_once_publish_each_job_once():
    RUNS.clear()
    now = timezone.now()
    OutboxMessage.objects.bulk_create(
        OutboxMessage(task=note.name, args=[n], created_at=now, next_try_at=now) for n in range(30)
    )
    outcomes = run_together(outbox.relay, outbox.relay)
    assert sum(outcomes) == 30
    assert sorted(args for args, _ in RUNS) == [(n,) for n in range(30)]
    assert not OutboxMessage.objects.filter(sent_at=None).exists()
    RUNS.clear()
