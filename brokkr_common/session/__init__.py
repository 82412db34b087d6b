"""The agent session protocol, both ends, without I/O.

An agent holds one bidirectional stream to the broker (`AgentSessionService.Connect`, contract in
proto/brokkr/v1/agent_session*.proto). This package is the protocol's logic and its reference
for implementers in other languages; the thin `grpc.aio` loops that drive it live in
`broker.stream` and `agent.stream`, and they only move bytes, read clocks and touch databases
and clusters as the machines' actions say.

A session, as Envoy's incremental xDS over one stream::

    agent                                         broker
      │── Hello(held: stack → version + hashes) ──►│  what the agent already holds
      │◄─────────────── Welcome(heartbeats, ids) ──│
      │◄── StackUpdate(nonce 1: only the delta) ───│  per stack not held exactly
      │◄── StackRemoval(nonce 2) ──────────────────│  per held stack not desired
      │── Ack(nonce 1) / Nack(nonce 2, status) ───►│  one answer per nonce
      │── Heartbeat ──► ◄── HeartbeatAck ──────────│  every interval
      │── HealthReport ───────────────────────────►│  when health changes
      │◄── DiagnosticsRequest(id) ─────────────────│  capability `diagnostics` only
      │── DiagnosticsResult(id, report | error) ──►│  collected beside applies

Modules, one concept each:

* `resource_key`: the hashable `ResourceKey`, and validation of keys and hashes from the wire.
* `delta`: `compute_delta` / `apply_delta` between held and desired content hashes.
* `stacks`: `DesiredStack` (what the broker sends) and `HeldStack` (what the agent holds).
* `reports`: apply results, errors and health as plain data.
* `updates`: `PlannedUpdate` and the `UpdateEncoder` that encodes each distinct update once.
* `broker_session`: `BrokerSession`, the broker end, and its actions.
* `agent_session`: `AgentSession`, the agent end, and its actions.

Both machines take time as input (`now`: seconds since the epoch) and never raise on bad input
from the other end: they answer with a `Close` action carrying a `BrokkrError`.
"""
