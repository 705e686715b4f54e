"""Node leases: a node of a shared log that goes silent for `lease_s` is declared dead by every
copy of the log at the same entry. Its waiting callers died with it (their calls were its calls),
its bridged calls end, and its callbacks move to the heir: the node heard of last (ties: first by name).

The heir is not simply the first live node by name: a node's lease is "live" until it runs out, so a
process that died with the lost node (another worker of the same node, whose lease ends a moment later)
is still listed, and `node-1-w1` sorts before `node-2`. Heard last is alive for sure: it is the sender
of the very command (a `Tick` at the lease's end) in which the loss is found.
"""

from __future__ import annotations

from ivr.acd.events import AcdEvent, NodeLost, WithdrawReason
from ivr.acd.state import AcdState
from ivr.call import QueueOutcomeKind


class NodeLeases:
    """Which nodes are alive, by when each was last heard of."""

    __slots__ = ("state",)

    def __init__(self, state: AcdState) -> None:
        self.state = state

    def heard(self, node: str) -> None:
        """Any command from a node renews its lease."""
        self.state.nodes[node] = self.state.now

    def renew_all(self) -> None:
        """Give every known node a fresh lease from now (after an outage nobody could speak in)."""
        s = self.state
        for node in s.nodes:
            s.nodes[node] = s.now

    def next_expiry(self) -> float | None:
        s = self.state
        if s.lease_s is None or not s.nodes:
            return None
        return min(s.nodes.values()) + s.lease_s

    def expire(self, out: list[AcdEvent]) -> None:
        s = self.state
        if s.lease_s is None:
            return
        dead = [n for n, seen in s.nodes.items() if seen + s.lease_s <= s.now]
        for node in dead:
            del s.nodes[node]
        heir = min(s.nodes, key=lambda n: (-s.nodes[n], n)) if s.nodes else None
        for node in dead:
            gone: list[str] = []
            for caller in [c for c in s.callers.values() if c.node == node]:
                s.withdraw_caller(caller, WithdrawReason.NODE_LOST, out)
                if caller.callback_number is not None and heir is not None:
                    caller.node = heir  # a callback outlives the node that took it
                    s.mark_caller(caller.call_id)
                else:
                    gone.append(caller.call_id)
                    s.queues[caller.queue].abandoned += 1
                    s.leave(caller, QueueOutcomeKind.ABANDONED, out)
            for conn in [c for c in s.connected.values() if c.node == node]:
                gone.append(conn.call_id)
                s.end_call(conn, out)
            out.append(NodeLost(node, tuple(gone), heir))
