"""Serve the portal with a Celery worker and beat: what `make run` starts.

Ctrl-C (or SIGTERM) stops the web server and the worker; if either exits, the
other is stopped too.
"""

import signal
import subprocess
import sys
import time

from django.core.management.base import BaseCommand

from config.celery import ensure_broker_folder


class Command(BaseCommand):
    help = "Run the web server and a Celery worker with beat, until interrupted."

    def add_arguments(self, parser):
        parser.add_argument("--addr", default="127.0.0.1:8000")
        parser.add_argument("--no-reload", action="store_true")

    def handle(self, *args, addr, no_reload, **options):
        ensure_broker_folder()
        from django.conf import settings

        worker_cmd = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--beat",
            "--loglevel=INFO",
            "--concurrency=2",
            "--schedule",
            settings.CELERY_BEAT_SCHEDULE_FILENAME,
        ]
        web_cmd = [sys.executable, "manage.py", "runserver", addr]
        if no_reload:
            web_cmd.append("--noreload")
        # Fixed argument lists built above, never from user input.
        processes = [subprocess.Popen(worker_cmd), subprocess.Popen(web_cmd)]  # noqa: S603
        self.stdout.write(self.style.SUCCESS(f"Portal on http://{addr}/ (Ctrl-C stops it)"))

        def stop(*_):
            raise KeyboardInterrupt

        # A shell without job control starts background jobs with SIGINT ignored;
        # take both signals explicitly so Ctrl-C and kill -INT always stop us.
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        code = 0
        try:
            while all(p.poll() is None for p in processes):
                time.sleep(0.5)
            code = next(p.returncode for p in processes if p.poll() is not None) or 1
        except KeyboardInterrupt:
            pass
        finally:
            for p in processes:
                if p.poll() is None:
                    p.terminate()
            for p in processes:
                try:
                    p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    p.kill()
        sys.exit(code)
