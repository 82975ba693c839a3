"""The embedded default used by `make run`: SQLite, filesystem broker, console mail."""

from .base import *
from .base import env

DEBUG = env.bool("DEBUG", default=True)
