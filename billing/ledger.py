"""How the credit ledger's credits were consumed: oldest first. Pure code."""

from dataclasses import dataclass, field
from decimal import Decimal


@dataclass
class CreditLot:
    """A credit and what later charges took from it."""

    sequence: int
    description: str
    amount: Decimal
    used: Decimal = Decimal(0)
    taken_by: list[tuple[int, Decimal]] = field(default_factory=list)  # (debit sequence, amount)

    @property
    def remaining(self) -> Decimal:
        return self.amount - self.used


def allocate_oldest_first(entries) -> list[CreditLot]:
    """Walk the entries in sequence order; each debit consumes the oldest credits first.

    `entries` are objects with sequence, amount (Decimal, positive for a credit, negative for a debit) and
    description, in ascending sequence.
    """
    lots: list[CreditLot] = []
    for entry in entries:
        if entry.amount > 0:
            lots.append(CreditLot(entry.sequence, entry.description, entry.amount))
            continue
        owed = -entry.amount
        for lot in lots:
            if owed == 0:
                break
            take = min(lot.remaining, owed)
            if take > 0:
                lot.used += take
                lot.taken_by.append((entry.sequence, take))
                owed -= take
        if owed:
            raise ValueError(f"Entry {entry.sequence} takes more credit than there is.")
    return lots
