"""The broker end of agent sessions: the Connect stream loop, the live sessions of this replica, and
the fan-out of committed changes to them (in-process on SQLite, LISTEN/NOTIFY on PostgreSQL)."""
