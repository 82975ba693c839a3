"""The embedded default used by `make run`: SQLite, filesystem broker, console mail."""

from .base import *
from .base import DATABASES, env

DEBUG = env.bool("DEBUG", default=True)

# dj-stripe's own migrations create its 45 models and then drop 500 of their
# columns, which takes Django a minute to replay on a fresh database. Locally the
# same migrations run squashed (they record the originals as applied, so the file
# stays valid under production settings); production runs dj-stripe's own.
# tests/test_local_migrations.py checks it builds the same models and replaces every
# installed migration.
MIGRATION_MODULES = {"djstripe": "config.djstripe_local.migrations"}

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # In WAL mode NORMAL never corrupts the file; a crash may only lose the last
    # commits, acceptable for the local demo and it saves an fsync per commit.
    DATABASES["default"]["OPTIONS"]["init_command"] += "PRAGMA synchronous=NORMAL;"
