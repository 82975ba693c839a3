from celery import shared_task
from celery.signals import worker_ready

from . import outbox


@shared_task
def outbox_relay() -> int:
    return outbox.relay()


@worker_ready.connect
def relay_when_a_worker_starts(sender=None, **kwargs):
    # Jobs queued while no worker (or no broker) was up go out now, not at the next beat.
    # Through the outbox too: published on a connection of its own, not the shared pool.
    outbox.enqueue(outbox_relay)
