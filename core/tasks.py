import gc

from celery import shared_task
from celery.signals import worker_init, worker_ready

from . import outbox


@shared_task
def outbox_relay() -> int:
    return outbox.relay()


@worker_init.connect
def freeze_what_start_up_built(sender=None, **kwargs):
    # As config/wsgi.py and manage.py do: the modules, models and tasks loaded at start-up
    # live as long as the worker. Frozen, every full collection no longer walks them
    # again, and the processes the pool forks share their pages.
    gc.freeze()


@worker_ready.connect
def relay_when_a_worker_starts(sender=None, **kwargs):
    # Jobs queued while no worker (or no broker) was up go out now, not at the next beat.
    # Through the outbox too: published on a connection of its own, not the shared pool.
    outbox.enqueue(outbox_relay)
