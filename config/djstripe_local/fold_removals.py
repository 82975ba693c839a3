"""Fold the RemoveFields of a squashed dj-stripe migration into its CreateModels, which
Django's optimizer leaves apart when a model in between has a foreign key to the model
(it cannot tell that the key does not point at the removed field). A field is folded
only when nothing between its CreateModel and its RemoveField refers to it and the
model's options do not name it. tests/test_local_migrations.py checks the result.

    .venv/bin/python config/djstripe_local/fold_removals.py
"""

import importlib
import os
import sys
from pathlib import Path

MODULE = "config.djstripe_local.migrations.0001_squashed_0003_2_11"
OPTIONS = ("unique_together", "index_together", "indexes", "constraints", "ordering")


def _refers(other, removal, migrations) -> bool:
    """Whether `other` refers to the removed field (or might: a many-to-many's through)."""
    if isinstance(other, migrations.CreateModel):
        fields = [field for _, field in other.fields]
    elif isinstance(other, migrations.AddField):
        if (other.model_name_lower, other.name_lower) == (
            removal.model_name_lower,
            removal.name_lower,
        ):
            return True
        fields = [other.field]
    else:
        return other.references_field(removal.model_name, removal.name, "djstripe")
    for field in fields:
        remote = getattr(field, "remote_field", None)
        if remote is None:
            continue
        if getattr(remote, "through", None) is not None:
            return True
        model = remote.model if isinstance(remote.model, str) else remote.model._meta.label
        if model.lower().rsplit(".", 1)[-1] != removal.model_name_lower:
            continue
        targets = [name.lower() for name in (getattr(field, "to_fields", None) or []) if name]
        if removal.name_lower in (targets or ["id"]):
            return True
    return False


def main() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    import django

    django.setup()
    from django.db import migrations
    from django.db.migrations.writer import MigrationWriter

    migration = importlib.import_module(MODULE).Migration("0001_squashed_0003_2_11", "djstripe")
    ops = list(migration.operations)
    creates = {
        op.name_lower: i for i, op in enumerate(ops) if isinstance(op, migrations.CreateModel)
    }
    kept, folded = [], 0
    for i, op in enumerate(ops):
        at = creates.get(getattr(op, "model_name_lower", None))
        if isinstance(op, migrations.RemoveField) and at is not None:
            create = ops[at]
            named = any(
                op.name_lower in str(create.options.get(key, "")).lower() for key in OPTIONS
            )
            if not named and not any(_refers(other, op, migrations) for other in ops[at + 1 : i]):
                ops[at] = migrations.CreateModel(
                    name=create.name,
                    fields=[(n, f) for n, f in create.fields if n.lower() != op.name_lower],
                    options=create.options,
                    bases=create.bases,
                    managers=create.managers,
                )
                folded += 1
                continue
        kept.append(i)
    migration.operations = [ops[i] for i in kept]
    path = Path(importlib.import_module(MODULE).__file__)
    path.write_text(MigrationWriter(migration).as_string())
    print(f"{path.name}: {folded} removals folded, {len(migration.operations)} operations left")


if __name__ == "__main__":
    main()
