"""Real threads on PostgreSQL, each with its own connection, started at one moment
(as Saleor's tests/race_condition.py does)."""

import threading

from django.db import close_old_connections, connection

from accounts.errors import PortalError


def run_together(*calls):
    """What each call returned or raised, in completion order; none may leak unseen."""
    barrier = threading.Barrier(len(calls))
    outcomes = []

    def run(call):
        try:
            barrier.wait(timeout=10)
            outcomes.append(call())
        except Exception as exc:
            outcomes.append(exc)
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a thread hung"
    assert len(outcomes) == len(calls)
    return outcomes


def assert_only_refusals(outcomes) -> None:
    """Losers of a race get the rules' clean refusal, never a database error."""
    leaked = [o for o in outcomes if isinstance(o, Exception) and not isinstance(o, PortalError)]
    assert not leaked, leaked
