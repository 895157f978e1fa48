"""SpoolStore: the producer spool's SQLite file (WAL), oldest task first.

One row per task: ``seq`` (its order, never reused: AUTOINCREMENT), the logical
stream, its request id, the payload (orjson bytes, size-checked before it got
here), when it was accepted (unix ms) and its ``size`` (payload + request id +
stream name, the figure ``max_bytes`` bounds). A batch is appended in one
transaction, so it is spooled whole or not at all, and a row is deleted only
after its publish was answered (at-least-once; the publisher dedups by request
id: docs/spool.md).

One process owns a spool file at a time: ``open`` takes an exclusive ``flock`` on
``<path>.lock`` and refuses a file another process holds, so two drainers never
interleave. The calls block (SQLite, fsync): the async side runs them in one
thread of its own (streams.spool.spooling).
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from streams.spool.errors import SpoolError, SpoolFull

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS spool (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    stream TEXT NOT NULL,
    request_id TEXT NOT NULL,
    payload BLOB NOT NULL,
    accepted_ms INTEGER NOT NULL,
    size INTEGER NOT NULL
)
"""


@dataclass(frozen=True, slots=True)
class Row:
    seq: int
    stream: str
    request_id: str
    payload: bytes
    accepted_ms: int
    size: int


class SpoolStore:
    """The spool file at ``path``, bounded by ``max_rows`` tasks and ``max_bytes``; see the module doc."""

    def __init__(self, path: Path, *, max_rows: int, max_bytes: int, synchronous: str = "full") -> None:
        self.path, self.max_rows, self.max_bytes = path, max_rows, max_bytes
        self._lock = _exclusive(path)
        try:
            self._db = _connect(path, synchronous)
            found = self._db.execute("SELECT count(*), coalesce(sum(size), 0) FROM spool").fetchone()
            self.rows, self.bytes = int(found[0]), int(found[1])
        except sqlite3.Error as error:
            os.close(self._lock)
            raise SpoolError(str(path), f"cannot open it as a spool ({error})") from error
        except SpoolError:
            os.close(self._lock)
            raise

    def append(self, stream: str, items: Sequence[tuple[str, bytes]]) -> None:
        """Spool (request_id, payload) pairs for ``stream`` in one transaction; SpoolFull if over a limit."""
        sizes = [len(payload) + len(rid.encode()) + len(stream.encode()) for rid, payload in items]
        adding = sum(sizes)
        if self.rows + len(items) > self.max_rows or self.bytes + adding > self.max_bytes:
            raise SpoolFull(str(self.path), self.rows, self.bytes, self.max_rows, self.max_bytes, adding)
        now = int(time.time() * 1000)
        rows = [(stream, rid, payload, now, size) for (rid, payload), size in zip(items, sizes, strict=True)]
        with self._writing("append to"):
            self._db.executemany("INSERT INTO spool (stream, request_id, payload, accepted_ms, size) "
                                 "VALUES (?, ?, ?, ?, ?)", rows)
        self.rows += len(items)
        self.bytes += adding

    def head(self, limit: int) -> list[Row]:
        """The oldest ``limit`` rows, oldest first."""
        try:
            found = self._db.execute(
                "SELECT seq, stream, request_id, payload, accepted_ms, size FROM spool ORDER BY seq LIMIT ?",
                (limit,)).fetchall()
        except sqlite3.Error as error:
            raise SpoolError(str(self.path), f"cannot read it ({error})") from error
        return [Row(*r) for r in found]

    def remove(self, rows: Sequence[Row]) -> None:
        """Delete ``rows`` (published and answered) in one transaction."""
        if not rows:
            return
        with self._writing("delete from"):
            self._db.executemany("DELETE FROM spool WHERE seq = ?", [(r.seq,) for r in rows])
        self.rows -= len(rows)
        self.bytes -= sum(r.size for r in rows)

    def close(self) -> None:
        self._db.close()
        os.close(self._lock)

    def _writing(self, what: str) -> _Transaction:
        return _Transaction(self._db, str(self.path), what)


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any error; a SQLite error becomes a SpoolError."""

    def __init__(self, db: sqlite3.Connection, path: str, what: str) -> None:
        self._db, self._path, self._what = db, path, what

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: object) -> None:
        if kind is None:
            try:
                self._db.execute("COMMIT")
                return
            except sqlite3.Error as failed:
                error = failed
        self._db.execute("ROLLBACK")
        if isinstance(error, sqlite3.Error):
            # disk full, I/O error, a file changed under us: the caller learns, nothing half-written stays
            raise SpoolError(self._path, f"cannot {self._what} it ({error})") from error


def _exclusive(path: Path) -> int:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as error:
        raise SpoolError(str(path), f"cannot create its lock file ({error})") from error
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise SpoolError(str(path), "another process holds it (one producer per spool file)") from None
    return fd


def _connect(path: Path, synchronous: str) -> sqlite3.Connection:
    # autocommit mode: transactions are the explicit BEGIN IMMEDIATE / COMMIT of _Transaction
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode != "wal":
            raise SpoolError(str(path), f"SQLite refused WAL mode here (journal_mode={mode})")
        db.execute(f"PRAGMA synchronous={'FULL' if synchronous == 'full' else 'NORMAL'}")
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version not in (0, SCHEMA_VERSION):
            raise SpoolError(str(path), f"schema version {version}, this millstream reads {SCHEMA_VERSION}")
        db.execute(_SCHEMA)
        db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
    except BaseException:
        db.close()
        raise
    return db
