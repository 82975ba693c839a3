"""Jobs of the outage and outbox tests. `block` is for the real worker of
tests/test_outages.py, which imports this module (`celery worker -I tests.outage_tasks`):
it notes each start and end of a run in a file and blocks in between, so that the test
can kill its worker in the middle. `note` keeps each run in RUNS (tasks run in-process)."""

import os
import time

from celery import shared_task


@shared_task(name="tests.outage_tasks.block")
def block(path: str, seconds: float) -> None:
    with open(path, "a") as runs:
        runs.write(f"started {os.getpid()}\n")
    time.sleep(seconds)
    with open(path, "a") as runs:
        runs.write(f"finished {os.getpid()}\n")


RUNS: list = []


@shared_task(name="tests.outage_tasks.note")
def note(*args, **kwargs) -> None:
    RUNS.append((args, kwargs))
