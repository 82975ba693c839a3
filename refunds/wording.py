"""The refund rules as customers read them: plain sentences, and the clause as a link to
the policy text the portal serves (/policies/<name>/, an anchor per section).

The engine cites clauses by id ("acelle §1.3", "onecloud §4", "onecrm partners",
"uncovered") and its explanations carry them too ("… (§1.3)."): staff see those as they
are; customer pages and mails go through `plain` and `clause_link`.
"""

import datetime as dt
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from django.urls import reverse

from accounts import formatting

TEXTS = Path(__file__).resolve().parent / "policy_texts"

# name in the URL -> (file, title)
POLICIES = {
    "acelle": ("acelle-refund-policy.txt", "AcelleMail refund policy"),
    "onecloud": ("onecloud-refund-policy.txt", "1Cloud AI CRM refund policy"),
    "onecrm": ("onecrm-terms-of-service.txt", "1CRM terms of service"),
}
# The 1CRM terms number nothing: the engine's two clauses point at these passages
# (anchor -> how the passage starts, what a link to it says).
NAMED_ANCHORS = {
    "onecrm": {
        "subscriptions": (
            "Monthly/Annual Subscriptions: Additional Terms",
            "Monthly and annual subscriptions",
        ),
        "partners": ("The above pricing and policies apply only", "Purchases through partners"),
    }
}
NUMBERED = re.compile(r"^(\d+(?:\.\d+)*)\.\s+(\S.*)$")
BULLET = re.compile(r"^\s*(?:-|•)\s+(.*)$")


@dataclass(frozen=True)
class Block:
    kind: str  # "title", "heading", "paragraph", "item"
    text: str
    anchor: str = ""
    level: int = 0
    number: str = ""


@dataclass(frozen=True)
class Policy:
    name: str
    title: str
    blocks: tuple[Block, ...]

    def heading(self, anchor: str) -> Block | None:
        return next((b for b in self.blocks if b.anchor == anchor), None)


@cache
def policy_get(name: str) -> Policy | None:
    if name not in POLICIES:
        return None
    filename, title = POLICIES[name]
    named = NAMED_ANCHORS.get(name, {})
    blocks = []
    for raw in (TEXTS / filename).read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line:
            continue
        anchor = next((a for a, (start, _) in named.items() if line.startswith(start)), "")
        if match := NUMBERED.match(line):
            number = match.group(1)
            blocks.append(
                Block(
                    "heading",
                    match.group(2),
                    anchor=f"s{number.replace('.', '-')}",
                    level=min(number.count(".") + 2, 4),
                    number=number,
                )
            )
        elif match := BULLET.match(raw):
            blocks.append(Block("item", match.group(1), anchor=anchor))
        elif not blocks:
            blocks.append(Block("title", line))
        elif anchor and len(line) < 80:
            blocks.append(Block("heading", line, anchor=anchor, level=2))
        else:
            blocks.append(Block("paragraph", line, anchor=anchor))
    return Policy(name, title, tuple(blocks))


class Outlook(dict):
    """The policy's answer per purchase (line id -> Decision), with the currency its
    amounts are in."""

    def __init__(self, *args, currency: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.currency = currency


@dataclass(frozen=True)
class ClauseLink:
    url: str
    label: str


def clause_link(clause: str) -> ClauseLink | None:
    """The policy section a clause id names, as a link: "Not eligible for refund (section
    1.3)". None for a clause the written policy does not have ("uncovered")."""
    name, _, section = (clause or "").partition(" ")
    policy = policy_get(name)
    if policy is None or not section:
        return None
    anchor = f"s{section.lstrip('§').replace('.', '-')}" if section.startswith("§") else section
    block = policy.heading(anchor)
    if block is None:
        return None
    url = f"{reverse('policy_page', args=[name])}#{anchor}"
    if block.number:
        return ClauseLink(url, f"{block.text} (section {block.number})")
    return ClauseLink(url, f"{policy.title}: {NAMED_ANCHORS[name][anchor][1].lower()}")


_CITED = re.compile(
    r"\s*\((?:(?:acelle|onecloud)\s)?§[\d.]+\)"  # " (§1.3)"
    r"|\s*\(1CRM terms(?:, [a-z ]+)?\)"  # " (1CRM terms, subscriptions)"
)
_INLINE_ID = re.compile(r"(?:(?:acelle|onecloud)\s)?§\s?([\d.]*\d)")
_NAMED_ID = re.compile(r"\bonecrm (?:subscriptions|partners)\b")


_MONTHS = "January February March April May June July August September October November December"
_ENGINE_DAY = re.compile(rf"\b(\d{{1,2}}) ({'|'.join(_MONTHS.split())}) (\d{{4}})\b")


def _portal_day(match: re.Match) -> str:
    month = _MONTHS.split().index(match.group(2)) + 1
    return formatting.day(dt.date(int(match.group(3)), month, int(match.group(1))))


def plain(text: str) -> str:
    """An engine explanation or terms text as customers read it: the citation in brackets
    goes (the page links the clause), an id inside a sentence reads "section 1.2", and
    the engine's dates ("9 March 2026") are in the portal's date style."""
    if not text:
        return ""
    text = _CITED.sub("", text)
    text = _INLINE_ID.sub(r"section \1", text)
    text = _NAMED_ID.sub("the terms", text)
    return _ENGINE_DAY.sub(_portal_day, text)
