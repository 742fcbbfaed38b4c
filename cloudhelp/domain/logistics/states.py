"""The states of a tracked item and the moves between them (docs/logistics.md draws them).

registered ──dispatched──▶ in_transit ──received──▶ received ──handed_on──▶ in_transit …
                               │                      │
                               │                      └──ready──▶ ready ──picked_up──▶ picked_up
                               ├──received at the hall──▶ at_hall (originals) / returned
                               └──wrong_station──▶ to_return ◀──exception── received, ready
to_return ──dispatched──▶ in_transit (back to the hall);  anything not finished ──▶ lost
"""

from __future__ import annotations

STATES = {
    "registered": "待发出",
    "in_transit": "运送中",
    "received": "已接收",
    "ready": "待取件",
    "picked_up": "已取件",
    "at_hall": "已交大厅",
    "to_return": "待退回",
    "returned": "已退回大厅",
    "lost": "遗失",
}
MOVES: dict[str, frozenset[str]] = {
    "registered": frozenset({"in_transit", "lost"}),
    "in_transit": frozenset({"received", "at_hall", "returned", "to_return", "lost"}),
    "received": frozenset({"in_transit", "ready", "to_return", "lost"}),
    "ready": frozenset({"picked_up", "to_return", "lost"}),
    "to_return": frozenset({"in_transit", "lost"}),
    "picked_up": frozenset(),
    "at_hall": frozenset(),
    "returned": frozenset(),
    "lost": frozenset(),
}
FINISHED = frozenset(state for state, moves in MOVES.items() if not moves)
# Lying at a station, waiting to be bundled into a run.
WAITING = ("registered", "received", "to_return")
KINDS = {
    "originals_in": "原件送审",
    "originals_back": "原件退还",
    "certificate": "证照",
}
# What went wrong: each sends the item back to the hall (lost: it stays lost until found).
EXCEPTIONS = {
    "lost": "遗失",
    "damaged": "损坏",
    "wrong_station": "错投",
    "not_collected": "逾期未取",
}
# The scans and changes recorded as an item's events.
EVENTS = (
    "registered",
    "dispatched",
    "handed_on",
    "received",
    "ready",
    "picked_up",
    "returned",
    "exception",
)


def allowed(from_state: str, to_state: str) -> bool:
    return to_state in MOVES.get(from_state, frozenset())
