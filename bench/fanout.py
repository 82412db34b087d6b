"""What fanning a change out to N agents costs, against a bare gRPC server pushing the same bytes.

For each N, in one run on one machine:

1. Brokkr. A fresh PostgreSQL database and a broker process (`python -m broker serve`, default
   settings); N agents created through the API, active and labelled, and one stack targeting that
   label. N simulated agents (the real `SessionClient`, see `bench.fanout_agents`) in several
   processes connect; then, 10 s apart, two versions are committed: a full push of 100 ConfigMaps
   (2,048 bytes of YAML each) and a change of 1 of those 100 objects. Measured: time until every
   agent is welcomed; commit→applied latency (commit: CreateDeploymentObject returned; applied: the
   agent's runtime finished); bytes and stack updates sent for each version (the broker's
   /metrics); the broker's RSS per connected agent; its CPU while idle with all connected, over
   one session sweep interval (60 s), since the sweep is part of what an idle broker does; and,
   after a SIGTERM and a restart on the same database, time until every agent is welcomed again
   (at most 600 s) and what that resume sent.
2. The floor (`bench.fanout_floor`): a bare `grpc.aio` server and N plain bidi streams, pushed the
   same number of bytes per stream as the broker sent for each version.

The headline latency is the 1-of-100 change, a new version of a stack the agents already run; the
table also shows the full push. Figures are printed as a table per N, or with `--json` as one
object per N (`bench.fanout_report`). Each N has a deadline; every process the benchmark started
is ended, and the database dropped, however the run ends.

    .venv/bin/python -m bench.fanout [--agents 100,1000,5000] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from bench.fanout_agents import Fleet
from bench.fanout_api import AdminApi, stack_yaml
from bench.fanout_broker import BrokerProcess, Database
from bench.fanout_floor import measure_floor
from bench.fanout_report import Brokkr, Push, Resume, figures, machine, table
from bench.fanout_workers import cpu_percent, raise_open_files_limit, rss_kib

#: Pause before each commit and before the idle window, so one step's tail (the broker writing
#: 100 results per agent for the full push, say) is not measured as part of the next.
_GAP_SECONDS = 10.0
#: The floor does nothing periodically; a short window says all there is to say.
_FLOOR_IDLE_SECONDS = 10.0
#: How long the agents may take to return after a broker restart before the resume counts as
#: failed (the figures measured before it are still reported).
_RESUME_LIMIT_SECONDS = 600.0


async def measure_brokkr(
    agents: int, processes: int, idle_seconds: float, deadline: float, logs: Path
) -> Brokkr:
    database = Database()
    broker = BrokerProcess(database.url, logs / f"broker-{agents}.log")
    admin: AdminApi | None = None
    fleet: Fleet | None = None
    try:
        await broker.start(deadline)
        admin = AdminApi(broker.target, broker.admin_key)
        keys = await admin.create_agents(agents)
        stack_id = await admin.create_stack()
        rss_before = rss_kib(broker.pid)
        fleet = Fleet(broker.target, keys, processes)
        started = await fleet.start(deadline)
        welcomes = await fleet.welcomed(0.0, deadline)
        if len(welcomes) < agents:
            raise TimeoutError(f"only {len(welcomes)} of {agents} agents connected in time")
        connect_s = max(welcomes) - started
        rss_kib_per_agent = (rss_kib(broker.pid) - rss_before) / agents
        full = await _push(broker, admin, fleet, stack_id, stack_yaml(1), deadline)
        change = await _push(broker, admin, fleet, stack_id, stack_yaml(2), deadline)
        await asyncio.sleep(_GAP_SECONDS)
        idle_cpu_pct = await cpu_percent(broker.pid, idle_seconds)
        resume = await _restart(broker, fleet, agents, deadline)
        return Brokkr(
            connect_s=round(connect_s, 2),
            full=full,
            change=change,
            rss_kib_per_agent=round(rss_kib_per_agent, 1),
            idle_cpu_pct=round(idle_cpu_pct, 1),
            resume=resume,
        )
    finally:
        if fleet is not None:
            fleet.kill()
        if admin is not None:
            await admin.close()
        await broker.kill()
        database.drop()


async def _push(
    broker: BrokerProcess, admin: AdminApi, fleet: Fleet, stack_id: str, content: str, deadline: float
) -> Push:
    await asyncio.sleep(_GAP_SECONDS)
    before = await broker.sent()
    sequence_id, committed = await admin.commit(stack_id, content)
    applied = await fleet.applied(sequence_id, deadline)
    after = await broker.sent()
    return Push.of(committed, applied, after - before)


async def _restart(broker: BrokerProcess, fleet: Fleet, agents: int, deadline: float) -> Resume:
    """SIGTERM the broker, start it again on the same database, and wait for the agents to return."""
    stopping = time.time()
    await broker.stop(deadline)
    stopped = time.time()
    await broker.start(deadline)
    ready = time.time()
    welcomes = await fleet.welcomed(stopped, min(deadline, ready + _RESUME_LIMIT_SECONDS))
    sent = await broker.sent()
    return Resume(
        agents=len(welcomes),
        seconds=round(max(welcomes) - stopping, 2) if len(welcomes) == agents else None,
        down_s=round(ready - stopping, 2),
        bytes_per_agent=round(sent.session_bytes / len(welcomes)) if welcomes else None,
        updates=round(sent.stack_updates),
    )


async def run(
    counts: Sequence[int], processes: int | None, idle_seconds: float, budget: float | None, as_json: bool
) -> int:
    logs = Path(tempfile.mkdtemp(prefix="brokkr-bench-fanout-"))
    if not as_json:
        print(machine(), flush=True)
    for agents in counts:
        workers = processes or min(max(math.ceil(agents / 2500), 2), 4)
        deadline = time.time() + (budget or 480 + 0.3 * agents)
        try:
            brokkr = await measure_brokkr(agents, workers, idle_seconds, deadline, logs)
            push_sizes = [brokkr.full.bytes_per_agent, brokkr.change.bytes_per_agent]
            floor = await measure_floor(agents, push_sizes, workers, _FLOOR_IDLE_SECONDS, deadline)
        except Exception as error:
            failure = f"{agents} agents: failed: {type(error).__name__}: {error}"
            print(f"{failure} (broker log kept in {logs})", file=sys.stderr)
            return 1
        except BaseException:
            shutil.rmtree(logs)
            raise
        if as_json:
            print(json.dumps(asdict(figures(agents, brokkr, floor))), flush=True)
        else:
            print(f"\n{table(agents, workers, brokkr, floor)}", flush=True)
    shutil.rmtree(logs)
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--agents",
        default="100,1000",
        type=lambda text: [int(n) for n in text.split(",")],
        help="comma-separated numbers of agents to measure, in order (default 100,1000)",
    )
    parser.add_argument("--processes", type=int, help="agent (and floor client) processes; default by N")
    parser.add_argument(
        "--idle-seconds",
        type=float,
        default=60.0,
        help="broker idle CPU window (default 60: the session sweep interval, as the sweep is idle work)",
    )
    parser.add_argument("--budget-seconds", type=float, help="deadline per N (default 480 + 0.3 s per agent)")
    parser.add_argument("--json", action="store_true", help="print one JSON object per N instead of tables")
    options = parser.parse_args()
    raise_open_files_limit()
    # SIGTERM unwinds like Ctrl-C, so every process is ended and the database dropped.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        code = asyncio.run(
            run(options.agents, options.processes, options.idle_seconds, options.budget_seconds, options.json)
        )
    except KeyboardInterrupt:
        print("interrupted; every process is ended and the database dropped", file=sys.stderr)
        code = 130
    sys.exit(code)


if __name__ == "__main__":
    main()
