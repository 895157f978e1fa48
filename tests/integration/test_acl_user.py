"""The ACL user of docs/operations/redis-acl.md runs a whole legacy pipeline, and can do nothing else.

A redis-server of this test loads the doc's ``user`` lines as its aclfile. A worker process
of ``legacy_pipeline`` (below) connects as ``millstream``: list ingress, a stage with a
retry and a shared rate limit, error records, the success and error mirrors; then the CLI
and the exporter run as the same user. ``ACL LOG`` must hold no refusal at the end:
upkeep that a refusal breaks only logs a warning, so the log is the check.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import redis as sync_redis
from prometheus_client import CollectorRegistry

from streams.bridge import ListIngress
from streams.errors import InvalidPayload, RetryableError
from streams.message import Message, Outgoing
from streams.metrics import Metrics
from streams.pipeline import Pipeline
from streams.policy import RetryPolicy
from streams.service import exporter
from streams.settings import Settings
from streams.stage import Stage
from tests.conftest import require_tool
from tests.support.redis_server import free_port
from tests.support.workers import ROOT, WorkerProcess, wait_until

DOC = ROOT / "docs" / "operations" / "redis-acl.md"
PASSWORD = "s3cret-acl-pw"
ADMIN = "admin-pw"
TASKS, SUCCESS, ERROR = "img:translate:tasks", "img:translate:success", "img:translate:error"


def legacy_pipeline(settings: Settings) -> Pipeline:
    """Seed 000's list path with a trivial stage: flaky tasks fail once, tasks without image_url are refused."""
    from processors.legacy import ERROR as ERROR_LIST
    from processors.legacy import ID_FIELDS, LISTS, mirror_errors, mirror_success
    from processors.legacy import SUCCESS as SUCCESS_LIST

    async def work(message: Message) -> list[Outgoing]:
        if "image_url" not in message.payload:
            raise InvalidPayload("missing field 'image_url'")
        if message.payload.get("flaky") and message.attempt == 1:
            raise RetryableError("flaky: first attempt fails")
        return [Outgoing(dict(message.payload))]

    task_stages = ("legacy-ingress", "work")
    stages = [
        Stage("work", "tasks", work, sinks=["success"], rate="1000/s",
              retry=RetryPolicy(base=0.05, factor=1.0, cap=0.05)),
        Stage("legacy-success", "success", mirror_success([SUCCESS_LIST]), batch_size=50),
        Stage("legacy-error", "errors", mirror_errors(ERROR_LIST, task_stages), batch_size=50),
    ]
    return Pipeline(os.environ["MSTEST_PIPELINE"], stages, bridges=[ListIngress("legacy-ingress", TASKS, "tasks")],
                    id_fields=ID_FIELDS, lists=LISTS)


def acl_lines(version: tuple[int, ...]) -> list[str]:
    """The doc's ``user`` lines with the test's password; on Redis >= 7.2 with the note's addition."""
    block = re.search(r"```acl\n(.*?)```", DOC.read_text(), re.S)
    assert block, f"{DOC} has no ```acl block"
    lines = [line.replace(">PASSWORD", f">{PASSWORD}") for line in block.group(1).splitlines() if line.strip()]
    if version >= (7, 2):
        lines = [line + " +client|setinfo" if " on " in line else line for line in lines]
    return lines


def redis_version(binary: str) -> tuple[int, ...]:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True).stdout
    found = re.search(r"v=(\d+)\.(\d+)", out)
    assert found, out
    return int(found.group(1)), int(found.group(2))


@pytest.fixture
def acl_server(tmp_path: Path) -> Iterator[int]:
    """A redis-server whose users are the doc's, plus an admin for the test's own reads."""
    binary = require_tool("redis-server")
    aclfile = tmp_path / "users.acl"
    users = [*acl_lines(redis_version(binary)), f"user admin on >{ADMIN} ~* &* +@all"]
    aclfile.write_text("\n".join(users) + "\n")
    port = free_port()
    process = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp_path),
                                "--save", "", "--appendonly", "no", "--aclfile", str(aclfile),
                                "--logfile", str(tmp_path / "redis.log")])
    admin = sync_redis.Redis(port=port, username="admin", password=ADMIN)
    try:
        wait_until(lambda: _answers(admin), timeout=10)
        yield port
    finally:
        admin.close()
        process.terminate()
        process.wait(10)


def _answers(client: sync_redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except sync_redis.ConnectionError:
        return False


def millstream(*args: str, url: str, pipeline: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MILLSTREAM_")}
    env.update(PYTHONPATH=str(ROOT), MSTEST_PIPELINE=pipeline, MILLSTREAM_REDIS_URL=url,
               MILLSTREAM_NAMESPACE="ms", MILLSTREAM_METRICS_PORT="0")
    return subprocess.run([sys.executable, "-m", "streams", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)


def test_the_documented_user_runs_the_legacy_pipeline_with_no_refusal(acl_server: int, tmp_path: Path,
                                                                      pipeline_name: str):
    url = f"redis://millstream:{PASSWORD}@127.0.0.1:{acl_server}/0"
    admin = sync_redis.Redis(port=acl_server, username="admin", password=ADMIN)
    admin.acl_log_reset()
    tasks = [orjson.dumps({"request_id": f"r{i}", "image_id": f"i{i}", "image_url": f"http://x/{i}.png",
                           "is_long": False, "flaky": i == 0}) for i in range(5)]
    tasks += [orjson.dumps({"request_id": "bad", "image_id": "ib"}), b"{not json"]
    admin.rpush(TASKS, *tasks)
    worker = WorkerProcess(url, pipeline_name, "c-acl", tmp_path, factory=f"{__name__}:legacy_pipeline",
                           MILLSTREAM_NAMESPACE="ms")
    try:
        wait_until(lambda: admin.llen(SUCCESS) + admin.llen(ERROR) >= 7, timeout=30)
        successes = [orjson.loads(x) for x in admin.lrange(SUCCESS, 0, -1)]
        errors = [orjson.loads(x) for x in admin.lrange(ERROR, 0, -1)]
        assert sorted(s["request_id"] for s in successes) == [f"r{i}" for i in range(5)]
        assert len(errors) == 2 and {e["request_id"] for e in errors} == {"bad", None}
        status = millstream("status", "--json", url=url, pipeline=pipeline_name)
        assert status.returncode == 0, status.stderr
        assert pipeline_name in status.stdout
        for command in (["pause", "work"], ["resume", "work"], ["pending", "work"], ["dlq", "list"], ["trim"]):
            done = millstream(*command, "--pipeline", pipeline_name, url=url, pipeline=pipeline_name)
            assert done.returncode == 0, (command, done.stdout, done.stderr)
        found = asyncio.run(exporter.sample_all(Settings(redis_url=url, namespace="ms"),
                                                Metrics(CollectorRegistry())))
        assert found >= 3
    finally:
        worker.signal(signal.SIGTERM)
        code = worker.wait(30)
    log = worker.log()
    assert code == 0, log[-3000:]
    refusals = admin.acl_log()
    admin.close()
    assert refusals == [], refusals
    assert "NOPERM" not in log and "failed" not in log, log[-3000:]


@pytest.mark.parametrize("command", [("FLUSHALL",), ("CONFIG", "GET", "*"), ("KEYS", "*"), ("GET", "other:key"),
                                     ("RPUSH", "other:list", "x"), ("SUBSCRIBE", "ch")])
def test_the_documented_user_is_refused_everything_else(acl_server: int, command: tuple[str, ...]):
    client = sync_redis.Redis(port=acl_server, username="millstream", password=PASSWORD)
    try:
        with pytest.raises(sync_redis.exceptions.NoPermissionError):
            client.execute_command(*command)
    finally:
        client.close()


def test_the_keda_user_reads_group_lag_and_nothing_else(acl_server: int):
    admin = sync_redis.Redis(port=acl_server, username="admin", password=ADMIN)
    admin.xgroup_create("ms:{p}:stream:tasks", "ocr", id="0", mkstream=True)
    keda = sync_redis.Redis(port=acl_server, username="keda", password=PASSWORD)
    try:
        assert keda.xinfo_groups("ms:{p}:stream:tasks")[0]["name"] == b"ocr"
        with pytest.raises(sync_redis.exceptions.NoPermissionError):
            keda.xadd("ms:{p}:stream:tasks", {"a": "1"})
        with pytest.raises(sync_redis.exceptions.NoPermissionError):
            keda.hgetall("ms:{p}:status:x")
    finally:
        keda.close()
        admin.close()
