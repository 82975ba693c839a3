#!/usr/bin/env python
import atexit
import gc
import os
import sys


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    import django
    from django.core.management import execute_from_command_line

    # Start-up builds some million objects (models, admin, URL patterns) that live as long
    # as the process. The cyclic collector would walk them again and again while they are
    # made, and once more at exit: 0.9 s of `manage.py check`'s 1.9 s. They are frozen out
    # of its reach, as config/wsgi.py does for gunicorn's workers; what a command makes
    # afterwards is collected as usual. runserver is left to set itself up under its
    # autoreloader, which survives a module that fails to import.
    if sys.argv[1:2] != ["runserver"]:
        gc.disable()
        try:
            django.setup()
        finally:
            gc.enable()
        gc.freeze()
    atexit.register(gc.freeze)
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
