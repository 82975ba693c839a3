"""The refund policy engine: pure code, plain data in, a clause-cited decision per line out.

from refunds.policy import decide, PRESETS, AccountFacts, LineFacts, RequestFacts, Context
"""

from .engine import Context, Preset, Section, decide
from .presets import PRESETS
from .types import (
    KINDS,
    OUTCOMES,
    REASON_LABELS,
    REASONS,
    AccountFacts,
    Decision,
    LineFacts,
    RequestFacts,
)

__all__ = [
    "KINDS",
    "OUTCOMES",
    "PRESETS",
    "REASONS",
    "REASON_LABELS",
    "AccountFacts",
    "Context",
    "Decision",
    "LineFacts",
    "Preset",
    "RequestFacts",
    "Section",
    "decide",
]
