"""`make run` migrates dj-stripe from one squashed migration (config/settings/local.py):
it must build exactly the schema of dj-stripe's own migrations, which production runs."""

import importlib
import pkgutil

from django.db.migrations.loader import MigrationLoader
from django.test import override_settings

LOCAL = "config.djstripe_local.migrations"


def _djstripe_state(modules: dict):
    with override_settings(MIGRATION_MODULES=modules):
        loader = MigrationLoader(None, ignore_no_migrations=True, replace_migrations=False)
        leaf = loader.graph.leaf_nodes("djstripe")
        assert len(leaf) == 1, leaf
        state = loader.project_state(leaf[0])
    return {key: model for key, model in state.models.items() if key[0] == "djstripe"}


def test_the_squash_replaces_every_installed_djstripe_migration():
    import djstripe.migrations

    installed = {
        ("djstripe", m.name)
        for m in pkgutil.iter_modules(djstripe.migrations.__path__)
        if m.name[0].isdigit()
    }
    squash = importlib.import_module(f"{LOCAL}.0001_squashed_0003_2_11").Migration
    assert set(squash.replaces) == installed, "dj-stripe changed: squash its migrations again"


def test_the_squash_builds_the_same_models_as_djstripe_migrations():
    original = _djstripe_state({"djstripe": "djstripe.migrations"})
    squashed = _djstripe_state({"djstripe": LOCAL})
    assert len(original) > 40
    assert sorted(original) == sorted(squashed)
    for key, model in original.items():
        assert squashed[key] == model, key
