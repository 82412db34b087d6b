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
from bench.fanout_floor import FloorFigures


@dataclass(frozen=True)
class Latency:
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
    #: Fewest and most objects an agent was asked to apply.
    objects: tuple[int, int]

    @classmethod
    def of(cls, committed: float, applied: Sequence[Applied], sent_bytes: float) -> Push:
        counts = [a.objects for a in applied]
        return cls(
            Latency.of([a.at - committed for a in applied]),
            round(sent_bytes / len(applied)),
            (min(counts), max(counts)),
        )


@dataclass(frozen=True)
class Brokkr:
    connect_s: float
    full: Push
    change: Push
    rss_kib_per_agent: float
    idle_cpu_pct: float
    resume_s: float
    #: SIGTERM until the restarted broker was ready again.
    down_s: float
    resume_bytes_per_agent: int
    resume_updates: int


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
    resume_bytes_per_agent: int
    resume_s: float
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
        resume_bytes_per_agent=brokkr.resume_bytes_per_agent,
        resume_s=brokkr.resume_s,
        rss_kib_per_agent=brokkr.rss_kib_per_agent,
        idle_cpu_pct=brokkr.idle_cpu_pct,
    )


def table(agents: int, processes: int, brokkr: Brokkr, floor: FloorFigures) -> str:
    full_floor, change_floor = (Latency.of(latencies) for latencies in floor.latencies)
    change, full = brokkr.change, brokkr.full
    seconds, ms, count = ",.2f", ",.1f", ",.0f"
    rows: list[tuple[str, str, float | str, float | None]] = [
        ("all connected (last Welcome), s", seconds, brokkr.connect_s, floor.connect_s),
        ("1-of-100 change, commit→applied p50, ms", ms, change.latency.p50_ms, change_floor.p50_ms),
        ("1-of-100 change, commit→applied p99, ms", ms, change.latency.p99_ms, change_floor.p99_ms),
        ("1-of-100 change, commit→applied max, ms", ms, change.latency.max_ms, change_floor.max_ms),
        ("full push, commit→applied p50, ms", ms, full.latency.p50_ms, full_floor.p50_ms),
        ("full push, commit→applied p99, ms", ms, full.latency.p99_ms, full_floor.p99_ms),
        ("full push, commit→applied max, ms", ms, full.latency.max_ms, full_floor.max_ms),
        ("full push, bytes sent per agent", count, full.bytes_per_agent, None),
        ("1-of-100 change, bytes sent per agent", count, change.bytes_per_agent, None),
        ("1-of-100 change / full push", "", f"1/{full.bytes_per_agent / change.bytes_per_agent:.0f}", None),
        ("1-of-100 change, objects applied per agent", "", _span(change.objects), None),
        ("broker RSS per connected agent, KiB", ms, brokkr.rss_kib_per_agent, floor.rss_kib_per_stream),
        ("broker CPU idle, all connected, % of a core", ms, brokkr.idle_cpu_pct, floor.idle_cpu_pct),
        ("restart: SIGTERM → all welcomed again, s", seconds, brokkr.resume_s, None),
        ("restart: SIGTERM → broker ready, s", seconds, brokkr.down_s, None),
        ("restart: bytes sent per agent", count, brokkr.resume_bytes_per_agent, None),
        ("restart: stack updates sent", count, brokkr.resume_updates, None),
    ]
    cells = [("", "brokkr", "floor", "ratio")]
    for label, spec, ours, base in rows:
        ratio = f"{ours / base:.1f}x" if isinstance(ours, float | int) and base else ""
        cells.append((label, format(ours, spec), "-" if base is None else format(base, spec), ratio))
    widths = [max(len(row[i]) for row in cells) for i in range(4)]
    lines = [
        "  ".join(
            cell.ljust(width) if i == 0 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        )
        for row in cells
    ]
    stack = f"a stack of {OBJECTS} ConfigMaps of {OBJECT_BYTES} B"
    title = f"{agents:,} agents ({processes} agent processes; {stack})"
    return "\n".join([title, *lines])


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
