"""One transition table per status, and one way to move along it.

Orders, payments, subscriptions, refund requests and support incidents each keep a
table of the moves their status may make. `StateMachine.move` refuses any other move,
naming both states, and writes the audit row of the move in the caller's transaction;
the caller holds the row's lock (billing.locks, or select_for_update). The house
example is the refund request's (refunds/services.py).
"""

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from .errors import PortalError
from .services import audit_record


@dataclass(frozen=True)
class StateMachine:
    field: str  # the model field that holds the state: "status", "state"
    transitions: Mapping[str, Iterable[str]]  # state -> the states it may become
    labels: Mapping[str, str]  # state -> what people read ("awaiting payment")
    noun: str  # how a refusal names the object when it has no better name
    # Functions (obj, old, new, actor) called after each move, in its transaction: how an
    # app above the row's owner follows it (billing.hooks.SUBSCRIPTION_MOVED_HOOKS).
    after: list = field(default_factory=list)

    def __post_init__(self):
        unknown = {
            new for moves in self.transitions.values() for new in moves if new not in self.labels
        } | {old for old in self.transitions if old not in self.labels}
        if unknown:
            raise ValueError(f"{self.noun}: unknown states in the table: {sorted(unknown)}")

    def label(self, state: str) -> str:
        return str(self.labels.get(state, state)).lower()

    def allows(self, old: str, new: str) -> bool:
        return new in self.transitions.get(old, ())

    def check(self, obj, new: str) -> str:
        """The current state, if it may become `new`; else a PortalError naming both."""
        old = getattr(obj, self.field)
        if not self.allows(old, new):
            name = getattr(obj, "number", "") or f"{self.noun} {obj.pk}"
            raise PortalError(
                f"{name} is {self.label(old)}: it cannot become {self.label(new)}.",
                field=self.field,
                code="invalid_transition",
            )
        return old

    def move(
        self,
        obj,
        new: str,
        *,
        actor,
        action: str,
        account=None,
        changes: dict | None = None,
        also: Iterable[str] = (),
        prepare: Callable[[object, str], Iterable[str]] | None = None,
    ) -> bool:
        """Move `obj` to `new` and audit it as `action`, saving its state, the fields in
        `also`, and those `prepare(obj, old)` sets once the state is new (stamps, the
        next deadline). Staying in the same state changes nothing: it returns False, and
        the caller saves what else it changed."""
        if getattr(obj, self.field) == new:
            return False
        old = self.check(obj, new)
        setattr(obj, self.field, new)
        fields = [self.field, *also, *(prepare(obj, old) if prepare else ())]
        obj.save(update_fields=list(dict.fromkeys(fields)))
        self._moved(obj, old, new, actor=actor, action=action, account=account, changes=changes)
        return True

    def move_many(
        self,
        objs: list,
        new: str,
        *,
        actor,
        action: str,
        account_of: Callable[[object], object],
        changes_of: Callable[[object], dict],
    ) -> list:
        """move() for several rows of one model bound for the same state (a chunk of
        renewals), their state written in one UPDATE; each is checked and audited as
        move() would, and the hooks follow each. Refuses them all if one may not move.
        Returns the rows that moved."""
        moving = [(obj, self.check(obj, new)) for obj in objs if getattr(obj, self.field) != new]
        if not moving:
            return []
        type(moving[0][0])._base_manager.filter(pk__in=[obj.pk for obj, _ in moving]).update(
            **{self.field: new}
        )
        for obj, _ in moving:
            setattr(obj, self.field, new)
        for obj, old in moving:
            self._moved(
                obj,
                old,
                new,
                actor=actor,
                action=action,
                account=account_of(obj),
                changes=changes_of(obj),
            )
        return [obj for obj, _ in moving]

    def _moved(self, obj, old: str, new: str, *, actor, action, account, changes) -> None:
        """A move's audit row and its hooks, once its state is written."""
        audit_record(
            actor=actor,
            action=action,
            target=obj,
            account=account if account is not None else getattr(obj, "account", None),
            changes={self.field: [old, new], **(changes or {})},
        )
        for hook in self.after:
            hook(obj, old, new, actor)


def machine_for(
    model, *, field: str, transitions: Mapping, noun: str, after: list | None = None
) -> StateMachine:
    """A machine whose labels are the model field's choices."""
    choices = dict(model._meta.get_field(field).choices)
    return StateMachine(
        field=field,
        transitions={old: frozenset(moves) for old, moves in transitions.items()},
        labels=choices,
        noun=noun,
        after=after if after is not None else [],
    )
