"""The call centre: tickets, routing and calls on top of the signaling hub.

The hub carries sessions and relays media negotiation; the call centre decides who talks to
whom. Every change is written to the database (cloudhelp.domain) before it is announced.
``CallCenter`` (center.py) is a thin façade over one module per job:

- sessions: who may connect, and what a session starting, resuming or ending means;
- tickets: a kiosk's ticket until it is answered (take, cancel, abandon);
- routing: offers (the ring), answers, picks and transfers;
- calls: the call room, its end, wrap-up and the rating;
- presence: a console coming and going, the status its staff member sets;
- pushes: snapshots in order (SnapshotGate) and coalesced;
- board: the supervisors' board and the time-out warnings;
- expiries: deadlines kept in the database (ring, wrap-up, abandon), fired once by any
  server process: an in-process timer on time, a sweep for what a dead process left;
- watchers: the background loops; tasks: tracked tasks, timers and guarded loops;
- messages and frames: what comes in and what goes out.
"""

from cloudhelp.callcenter.calls import SCREEN_LOG_MAX
from cloudhelp.callcenter.center import CallCenter
from cloudhelp.callcenter.pushes import SnapshotGate

__all__ = ["SCREEN_LOG_MAX", "CallCenter", "SnapshotGate"]
