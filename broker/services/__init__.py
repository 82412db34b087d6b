"""The broker's use cases: one module per thing users manage, plain async functions over a unit of work.

Every function takes a fresh unit of work (`broker.domain.ports.UnitOfWork`) and the calling
`Principal`, validates the whole request before touching storage (every violation in one
INVALID_ARGUMENT, nothing written), applies the resource-level authorisation rules (`access`), and
returns domain objects. Nothing here knows SQL or gRPC.
"""
