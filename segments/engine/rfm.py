"""RFM groups: named ranges of the recency and frequency scores (1-5), shared by the metrics table
(which stores each customer's group) and the rule editor (the `rfm_group` metric's choices)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RfmGroup:
    """A named RFM group: the recency and frequency scores (inclusive ranges) that fall in it."""

    name: str
    recency: tuple[int, int]
    frequency: tuple[int, int]
    description: str


# Every (recency, frequency) pair of scores 1-5 falls in exactly one group (a test checks the grid).
RFM_GROUPS: tuple[RfmGroup, ...] = (
    RfmGroup("champions", (5, 5), (4, 5), "Bought very recently and buy often."),
    RfmGroup("loyal", (3, 4), (4, 5), "Buy often and bought fairly recently."),
    RfmGroup("potential_loyalist", (4, 5), (2, 3), "Recent customers with a few orders."),
    RfmGroup("new", (5, 5), (1, 1), "Bought very recently, for the first time or close to it."),
    RfmGroup("promising", (4, 4), (1, 1), "Recent customers with a single order or so."),
    RfmGroup("needs_attention", (3, 3), (1, 3), "Neither recent nor frequent: middling on both."),
    RfmGroup("at_risk", (1, 2), (3, 4), "Used to buy fairly often but not for a long time."),
    RfmGroup("cannot_lose", (1, 2), (5, 5), "Among the most frequent buyers, but not for a long time."),
    RfmGroup("hibernating", (2, 2), (1, 2), "Few orders, long ago."),
    RfmGroup("lost", (1, 1), (1, 2), "Few orders, the longest ago."),
)


def rfm_group(recency: int, frequency: int) -> str:
    """The RFM group of a customer with these recency and frequency scores (each 1-5)."""
    for group in RFM_GROUPS:
        if group.recency[0] <= recency <= group.recency[1] and group.frequency[0] <= frequency <= group.frequency[1]:
            return group.name
    raise ValueError(f"RFM scores must be 1-5, got recency={recency} frequency={frequency}")
