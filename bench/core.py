"""``millstream bench core``: a no-op 3-stage pipeline against a raw redis-py loop.

Both run one process per stage on the same (embedded, unless --redis-url)
redis-server, fed the same pre-encoded envelopes. Throughput is end-to-end
messages per second through all three stages. Each round measures both
throughputs back to back, then runs both paced at half the rate the pipeline
just reached, and reads per-stage latency from entry IDs (the millisecond
each entry was added to its stream). Pacing each round by its own maximum
keeps "half the maximum rate" true on a machine whose speed drifts between
rounds (a shared 2-core VM varies by a third). The round with the median
throughput ratio and the round with the median worst-stage p99 are reported;
the raw loop's p99 at the same rate is the latency baseline.
Last line:
``pipeline_msgs_per_s=<float> baseline_msgs_per_s=<float> ratio=<float>``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, NamedTuple

import redis
import typer

from streams.codec import encode_payload, envelope
from streams.message import Message, Outgoing
from streams.pipeline import Pipeline
from streams.redis import resp
from streams.redis.keys import Keys
from streams.redis.server import EmbeddedRedis
from streams.settings import Settings
from streams.stage import Stage

STAGES = ("s1", "s2", "s3")
ROOT = Path(__file__).resolve().parents[1]


async def _noop(message: Message) -> list[Outgoing]:
    return [Outgoing(message.payload)]


def noop_pipeline(settings: Settings) -> Pipeline:
    """Three no-op stages: in → a → b → out."""
    streams = ["in", "a", "b", "out"]
    return Pipeline(os.environ["MSBENCH_PIPELINE"], [
        Stage(name, streams[i], _noop, sinks=[streams[i + 1]], batch_size=500, max_in_flight=1000)
        for i, name in enumerate(STAGES)
    ])


def _spawn(kind: str, url: str, keys: Keys) -> list[subprocess.Popen[bytes]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MILLSTREAM_")}
    env.update(PYTHONPATH=str(ROOT), MSBENCH_PIPELINE=keys.pipeline, MILLSTREAM_REDIS_URL=url,
               MILLSTREAM_NAMESPACE=keys.namespace, MILLSTREAM_METRICS_PORT="0",
               MILLSTREAM_TRIM_INTERVAL="3600", MILLSTREAM_LOG_LEVEL="WARNING")
    streams = ["in", "a", "b", "out"]
    commands = [
        [sys.executable, "-m", "streams", "worker", "bench.core:noop_pipeline", "--stage", name]
        if kind == "pipeline" else
        [sys.executable, "-m", "bench.rawloop", url,
         keys.stream(streams[i]), keys.stream(streams[i + 1]), name]
        for i, name in enumerate(STAGES)
    ]
    return [subprocess.Popen(c, cwd=ROOT, env=env) for c in commands]


def _wait_ready(client: redis.Redis, keys: Keys) -> None:
    streams = ["in", "a", "b"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if all(client.xinfo_groups(keys.stream(s)) for s in streams):
                time.sleep(0.5)  # let every reader reach its blocking read
                return
        except redis.ResponseError:
            pass
        time.sleep(0.05)
    raise SystemExit("bench: stage processes did not start within 30 s")


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for p in processes:
        p.send_signal(signal.SIGTERM)
    for p in processes:
        p.wait(30)


def _entries(key: str, count: int) -> list[bytes]:
    """``count`` XADDs of envelopes to ``key``, packed before the clock starts.

    The feeder shares the CPU with the stages it measures, so it only sends
    bytes (pipelining through redis-py cost it more CPU than a stage).
    """
    now = int(time.time() * 1000)
    head = [resp.bulk(b"XADD"), resp.bulk(key.encode()), resp.bulk(b"*")]
    return [resp.command(13, [*head, *[resp.bulk(f.encode()) for f in envelope(
                encode_payload({"n": i, "body": "x" * 64}), f"b{i}", 1, now)]])
            for i in range(count)]


def _insert(client: redis.Redis, commands: list[bytes]) -> None:
    conn = client.connection_pool.get_connection()
    try:
        conn.send_packed_command([b"".join(commands)])
        for _ in commands:
            conn.read_response()
    finally:
        client.connection_pool.release(conn)


def _throughput(kind: str, url: str, messages: int) -> float:
    keys = Keys("bench", f"{kind}-{uuid.uuid4().hex[:8]}")
    client = redis.Redis.from_url(url)
    processes = _spawn(kind, url, keys)
    try:
        _wait_ready(client, keys)
        commands = _entries(keys.stream("in"), messages)
        started = time.perf_counter()
        for i in range(0, messages, 1000):
            _insert(client, commands[i:i + 1000])
        while client.xlen(keys.stream("out")) < messages:
            time.sleep(0.005)
        return messages / (time.perf_counter() - started)
    finally:
        _stop(processes)
        client.close()


def _ms(entry_id: bytes) -> int:
    return int(entry_id.split(b"-")[0])


def _cpu_ticks() -> tuple[int, int] | None:
    """(busy, total) CPU ticks of the whole machine so far, from /proc/stat (None elsewhere)."""
    try:
        with open("/proc/stat") as stat:
            ticks = [int(t) for t in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    return sum(ticks) - ticks[3] - ticks[4], sum(ticks)  # all but idle and iowait


def _busy_since(start: tuple[int, int] | None) -> float | None:
    end = _cpu_ticks()
    if start is None or end is None or end[1] == start[1]:
        return None
    return (end[0] - start[0]) / (end[1] - start[1])


class Paced(NamedTuple):
    """A paced run: per-stage latencies (ms) and how busy the machine's cores were
    meanwhile (a fraction; None where /proc/stat is missing)."""

    latencies: dict[str, list[int]]
    busy: float | None

    def p99(self, stage: str) -> float:
        return _percentile(self.latencies[stage], 0.99)

    @property
    def worst(self) -> float:
        return max(self.p99(s) for s in STAGES)

    def summary(self) -> str:
        cores = "" if self.busy is None else f", cores {self.busy:.0%} busy"
        return "/".join(f"{self.p99(s):.0f}" for s in STAGES) + f" ms{cores}"


def _latencies(kind: str, url: str, rate: float, seconds: float) -> Paced:
    """``kind`` ("pipeline" or "raw") fed at ``rate`` messages/s for ``seconds``."""
    keys = Keys("bench", f"paced-{kind}-{uuid.uuid4().hex[:8]}")
    client = redis.Redis.from_url(url)
    processes = _spawn(kind, url, keys)
    total = int(rate * seconds)
    try:
        _wait_ready(client, keys)
        commands = _entries(keys.stream("in"), total)
        tick, sent, started, ticks = 0.005, 0, time.perf_counter(), _cpu_ticks()
        while sent < total:
            due = min(total, int((time.perf_counter() - started) * rate) + 1)
            if due > sent:
                _insert(client, commands[sent:due])
                sent = due
            time.sleep(tick)
        while client.xlen(keys.stream("out")) < total:
            time.sleep(0.01)
        busy = _busy_since(ticks)
        added = {s: {f[b"rid"]: _ms(i) for i, f in client.xrange(keys.stream(s))}
                 for s in ("in", "a", "b", "out")}
    finally:
        _stop(processes)
        client.close()
    hops = [("in", "a"), ("a", "b"), ("b", "out")]
    result = {name: [added[dst][r] - added[src][r] for r in added["in"]]
              for name, (src, dst) in zip(STAGES, hops, strict=True)}
    result["end_to_end"] = [added["out"][r] - added["in"][r] for r in added["in"]]
    return Paced(result, busy)


def _percentile(values: list[int], q: float) -> float:
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, int(q * len(ordered)))])


def run(messages: int, url: str, seconds: float, rounds: int,
        say: Callable[[str], None]) -> tuple[float, float]:
    raw: list[float] = []
    ours: list[float] = []
    paced: list[tuple[float, Paced, Paced]] = []  # (rate, pipeline, raw loop)
    for n in range(1, rounds + 1):
        raw.append(_throughput("raw", url, messages))
        ours.append(_throughput("pipeline", url, messages))
        say(f"round {n}/{rounds}: baseline {raw[-1]:,.0f} msgs/s, pipeline {ours[-1]:,.0f} msgs/s "
            f"(ratio {ours[-1] / raw[-1]:.3f})")
        rate = ours[-1] / 2
        paced.append((rate, _latencies("pipeline", url, rate, seconds),
                      _latencies("raw", url, rate, seconds)))
        say(f"  paced at {rate:,.0f} msgs/s, per-stage p99: pipeline {paced[-1][1].summary()}; "
            f"raw loop {paced[-1][2].summary()}")
    by_ratio = sorted(range(rounds), key=lambda i: ours[i] / raw[i])
    median = by_ratio[rounds // 2]
    baseline, pipeline = raw[median], ours[median]
    say(f"median round {median + 1}: baseline (raw redis-py loop, 3 processes) {baseline:,.0f} msgs/s, "
        f"pipeline (millstream, fenced transitions, 3 processes) {pipeline:,.0f} msgs/s")
    say(f"best rounds: baseline {max(raw):,.0f} msgs/s, pipeline {max(ours):,.0f} msgs/s")
    rate, ours_paced, raw_paced = sorted(paced, key=lambda r: r[1].worst)[rounds // 2]
    for name, values in ours_paced.latencies.items():
        say(f"latency at {rate:,.0f} msgs/s (median round), {name}: p50={_percentile(values, 0.5):.0f} ms "
            f"p99={_percentile(values, 0.99):.0f} ms max={max(values)} ms (n={len(values)})")
    against = ours_paced.worst / max(1.0, raw_paced.worst)
    say(f"worst-stage p99 at half the maximum rate, median round: pipeline {ours_paced.worst:.0f} ms, "
        f"raw loop {raw_paced.worst:.0f} ms at the same rate (ratio {against:.2f}); pipeline/raw by round: "
        + ", ".join(f"{o.worst:.0f}/{r.worst:.0f}" for _, o, r in paced))
    return pipeline, baseline


def core(
    messages: Annotated[int, typer.Option(help="Messages per throughput run")] = 20_000,
    redis_url: Annotated[str | None, typer.Option(help="Use this Redis instead of an embedded one")] = None,
    seconds: Annotated[float, typer.Option(help="Length of each paced latency run")] = 5.0,
    rounds: Annotated[int, typer.Option(min=1, help="Rounds (throughput, then paced); medians reported")] = 5,
) -> None:
    """No-op 3-stage pipeline vs a raw redis-py loop: throughput ratio and per-stage latency."""
    with tempfile.TemporaryDirectory(prefix="millstream-bench-") as tmp:
        server = None if redis_url else EmbeddedRedis(Path(tmp) / "redis")
        try:
            url = redis_url or server.url  # type: ignore[union-attr]
            typer.echo(f"bench core: {messages} messages, redis {url}, {os.cpu_count()} CPUs")
            pipeline, baseline = run(messages, url, seconds, rounds, typer.echo)
        finally:
            if server:
                server.stop()
    typer.echo(f"pipeline_msgs_per_s={pipeline:.1f} baseline_msgs_per_s={baseline:.1f} "
               f"ratio={pipeline / baseline:.3f}")


def register(app: typer.Typer, bench: typer.Typer) -> None:
    bench.command("core")(core)
