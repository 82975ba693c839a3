"""What every process pays at start-up (issue 16: `manage.py check` within 1.5 s)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def printed(*args: str) -> list[str]:
    """The words a fresh `python *args` prints, on the test settings."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env={"DJANGO_SETTINGS_MODULE": "config.settings.test", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()


def test_start_up_leaves_out_aiohttp_yet_it_stays_importable():
    """stripe would import aiohttp (there only for localstripe) and build two TLS contexts
    in every process; config/__init__.py keeps it out of stripe's import."""
    probe = (
        "import sys, django; django.setup(); "
        "print('aiohttp' in sys.modules); "
        "import stripe._http_client as c; print(c._default_async_client.__name__); "
        "import aiohttp; print(bool(aiohttp.ClientSession))"
    )
    assert printed("-c", probe) == ["False", "NoImportFoundAsyncClient", "True"]


def test_manage_py_freezes_what_start_up_built_and_keeps_collecting_the_rest():
    """manage.py sets Django up with the cyclic collector paused, then freezes the result:
    walking those objects while they were made, and again at exit, was half of `check`."""
    probe = (
        "import gc; print(gc.isenabled(), gc.get_freeze_count() > 100_000); "
        "print(gc.collect() >= 0)"
    )
    assert printed("manage.py", "shell", "-v", "0", "-c", probe) == ["True", "True", "True"]


def test_a_celery_worker_freezes_what_start_up_built_before_its_pool_forks():
    import gc

    from celery.signals import worker_init

    import core.tasks  # noqa: F401  (where the worker's start-up hooks are connected)

    before = gc.get_freeze_count()
    try:
        worker_init.send(sender=None)
        assert gc.get_freeze_count() > before
    finally:
        gc.unfreeze()
