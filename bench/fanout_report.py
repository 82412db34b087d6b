"""What one N of the fan-out benchmark found, and how it is printed.

`Figures` holds the tracked numbers, exactly the keys `--json` prints; `table` shows them with the
details and the floor beside them, and ratios where the floor did the same thing.
"""

from __future__ import annotations

import math
import os
import platform
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc

from bench.fanout_agents import Applied
from bench.fanout_api import OBJECT_BYTES, OBJECTS
from bench.fanout_broker import Sent
from bench.fanout_floor import FloorFigures


@dataclass(frozen=True)
class Latency:
    """Nearest-rank percentiles of per-agent latencies, in milliseconds."""

    p50_ms: float
    p99_ms: float
    max_ms: float

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Latency:
        ordered = sorted(seconds)

        def rank(q: float) -> float:
            return round(ordered[max(math.ceil(q * len(ordered)) - 1, 0)] * 1000, 1)

        return cls(rank(0.50), rank(0.99), rank(1.0))


@dataclass(frozen=True)
class Push:
    """One committed version reaching every agent."""

    latency: Latency
    bytes_per_agent: int
    #: Stack updates the broker sent meanwhile: one per agent unless some were sent twice.
    updates: int
    #: Fewest and most objects an agent was asked to apply.
    objects: tuple[int, int]

    @classmethod
    def of(cls, committed: float, applied: Sequence[Applied], sent: Sent) -> Push:
        counts = [a.objects for a in applied]
        return cls(
            Latency.of([a.at - committed for a in applied]),
            round(sent.session_bytes / len(applied)),
            round(sent.stack_updates),
            (min(counts), max(counts)),
        )


@dataclass(frozen=True)
class Resume:
    """The agents returning after a broker restart with nothing changed."""

    #: Agents welcomed again within the limit.
    agents: int
    #: SIGTERM until the last agent was welcomed again; None if not all were, within the limit.
    seconds: float | None
    #: SIGTERM until the restarted broker was ready.
    down_s: float
    bytes_per_agent: int | None
    updates: int


@dataclass(frozen=True)
class Brokkr:
    """Everything measured of the broker for one N."""

    connect_s: float
    full: Push
    change: Push
    rss_kib_per_agent: float
    idle_cpu_pct: float
    resume: Resume


@dataclass(frozen=True)
class Figures:
    """The tracked figures of one N: exactly the keys `--json` prints."""

    agents: int
    connect_s: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    floor_p50_ms: float
    floor_p99_ms: float
    full_push_bytes: int
    delta_1of100_bytes: int
    #: None when not every agent came back within the limit.
    resume_bytes_per_agent: int | None
    resume_s: float | None
    rss_kib_per_agent: float
    idle_cpu_pct: float


def figures(agents: int, brokkr: Brokkr, floor: FloorFigures) -> Figures:
    floor_change = Latency.of(floor.latencies[1])
    return Figures(
        agents=agents,
        connect_s=brokkr.connect_s,
        p50_ms=brokkr.change.latency.p50_ms,
        p99_ms=brokkr.change.latency.p99_ms,
        max_ms=brokkr.change.latency.max_ms,
        floor_p50_ms=floor_change.p50_ms,
        floor_p99_ms=floor_change.p99_ms,
        full_push_bytes=brokkr.full.bytes_per_agent,
        delta_1of100_bytes=brokkr.change.bytes_per_agent,
        resume_bytes_per_agent=brokkr.resume.bytes_per_agent if brokkr.resume.seconds is not None else None,
        resume_s=brokkr.resume.seconds,
        rss_kib_per_agent=brokkr.rss_kib_per_agent,
        idle_cpu_pct=brokkr.idle_cpu_pct,
    )


def table(agents: int, processes: int, brokkr: Brokkr, floor: FloorFigures) -> str:
    full_floor, change_floor = (Latency.of(latencies) for latencies in floor.latencies)
    change, full, resume = brokkr.change, brokkr.full, brokkr.resume
    seconds, ms, count = ",.2f", ",.1f", ",.0f"
    returned = f"only {resume.agents:,} of {agents:,}"
    share = f"1/{full.bytes_per_agent / change.bytes_per_agent:.0f}"
    rows: list[tuple[str, str, float | str | None, float | None]] = [
        ("all connected (last Welcome), s", seconds, brokkr.connect_s, floor.connect_s),
        ("1-of-100 change, commit→applied p50, ms", ms, change.latency.p50_ms, change_floor.p50_ms),
        ("1-of-100 change, commit→applied p99, ms", ms, change.latency.p99_ms, change_floor.p99_ms),
        ("1-of-100 change, commit→applied max, ms", ms, change.latency.max_ms, change_floor.max_ms),
        ("full push, commit→applied p50, ms", ms, full.latency.p50_ms, full_floor.p50_ms),
        ("full push, commit→applied p99, ms", ms, full.latency.p99_ms, full_floor.p99_ms),
        ("full push, commit→applied max, ms", ms, full.latency.max_ms, full_floor.max_ms),
        ("full push, bytes sent per agent", count, full.bytes_per_agent, None),
        ("full push, stack updates sent", count, full.updates, None),
        ("1-of-100 change, bytes sent per agent", count, change.bytes_per_agent, None),
        ("1-of-100 change, stack updates sent", count, change.updates, None),
        ("1-of-100 change, objects applied per agent", "", _span(change.objects), None),
        ("1-of-100 change / full push, bytes", "", share, None),
        ("broker RSS per connected agent, KiB", ms, brokkr.rss_kib_per_agent, floor.rss_kib_per_stream),
        ("broker CPU idle, all connected, % of a core", ms, brokkr.idle_cpu_pct, floor.idle_cpu_pct),
        ("restart: SIGTERM → broker ready, s", seconds, resume.down_s, None),
        ("restart: SIGTERM → all welcomed again, s", seconds, resume.seconds or returned, None),
        ("restart: bytes sent per agent", count, resume.bytes_per_agent, None),
        ("restart: stack updates sent", count, resume.updates, None),
    ]
    cells = [("", "brokkr", "floor", "ratio")]
    for label, spec, ours, base in rows:
        ratio = f"{ours / base:.1f}x" if isinstance(ours, float | int) and base else ""
        shown = ours if isinstance(ours, str) else "-" if ours is None else format(ours, spec)
        cells.append((label, shown, "-" if base is None else format(base, spec), ratio))
    widths = [max(len(row[i]) for row in cells) for i in range(4)]
    lines = [
        "  ".join(
            cell.ljust(width) if i == 0 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        )
        for row in cells
    ]
    stack = f"a stack of {OBJECTS} ConfigMaps of {OBJECT_BYTES} B"
    return "\n".join([f"{agents:,} agents ({processes} agent processes; {stack})", *lines])


def _span(values: tuple[int, int]) -> str:
    low, high = values
    return str(low) if low == high else f"{low}-{high}"


def machine() -> str:
    """CPUs, memory, kernel, Python and grpcio: what the figures depend on."""
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "?")
    memory_kib = int(Path("/proc/meminfo").read_text().split()[1])
    return (
        f"{os.cpu_count()} CPUs ({model}), {memory_kib / 1024 / 1024:.1f} GiB RAM, "
        f"Linux {platform.release()}, Python {platform.python_version()}, grpcio {grpc.__version__}"
    )
