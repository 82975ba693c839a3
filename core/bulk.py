"""Work on many rows at once: a batch done together, and the writes the ORM makes slow."""

import logging

from celery.exceptions import SoftTimeLimitExceeded
from django.db import connections, router

logger = logging.getLogger(__name__)


def update_rows(rows, names) -> None:
    """Write the fields `names` of each of `rows` (saved instances of one model), each
    with its own values: one UPDATE statement run for every row with executemany
    (psycopg pipelines them: one round trip). QuerySet.bulk_update would build a CASE
    of every row for every field, which costs more to compile than it saves."""
    rows = list(rows)
    if not rows:
        return
    model = type(rows[0])
    meta = model._meta
    connection = connections[router.db_for_write(model)]
    quote = connection.ops.quote_name
    fields = [meta.get_field(name) for name in names]
    # Names from the model, quoted; the values are parameters.
    sql = "UPDATE {} SET {} WHERE {} = %s".format(  # noqa: S608
        quote(meta.db_table),
        ", ".join(f"{quote(field.column)} = %s" for field in fields),
        quote(meta.pk.column),
    )
    params = [
        [field.get_db_prep_save(getattr(row, field.attname), connection) for field in fields]
        + [row.pk]
        for row in rows
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)


def together_or_none(run, *, what: str, first, last):
    """`run()`, the work of a batch done in one transaction (a chunk of renewals, a batch
    of inbound mails), or None when it failed: logged, and the caller then does the
    batch one item at a time, so that one bad item never holds back the others. A soft
    time limit is not a failure of the batch: it ends the task."""
    try:
        return run()
    except SoftTimeLimitExceeded:
        raise
    except Exception:
        logger.warning(
            "%s %s to %s could not be done together; one by one instead",
            what,
            first,
            last,
            exc_info=True,
        )
        return None
