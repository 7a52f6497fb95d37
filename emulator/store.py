"""The shared SQLite store both apps write to.

One connection per store, serialised by a re-entrant lock: SQLite has one writer at a time anyway, and
one connection lets an in-memory store be shared by the WSGI server's threads. A file store runs in WAL
mode with `synchronous=NORMAL`: a committed transaction survives the process being killed.
"""
from __future__ import annotations

import functools
import sqlite3
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from .schema import KEPT_ON_RESET, MIGRATIONS


def _import_sqlite_utils():  # type: ignore[no-untyped-def]
    """sqlite-utils imports numpy and pandas when they are installed (~150 ms and more) only to store their values,
    which we never do; keeping them out halves the time `emulator serve` takes to answer. A later `import numpy`
    works as usual."""
    blocked = [name for name in ("numpy", "pandas") if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # type: ignore[assignment]
    try:
        import sqlite_utils
    finally:
        for name in blocked:
            del sys.modules[name]
    return sqlite_utils


sqlite_utils = _import_sqlite_utils()


def contains_pattern(text: str) -> str:
    """A LIKE pattern (used with `ESCAPE '\\'`) matching `text` anywhere, its % and _ taken literally."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


class SchemaError(RuntimeError):
    pass


class Store:
    def __init__(self, path: str | Path | None = None, *, from_image: bool = True) -> None:
        self.path = str(path) if path else None
        conn = sqlite3.connect(self.path or ":memory:", check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA foreign_keys = ON")
        if self.path:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA busy_timeout = 5000")
        self.db = sqlite_utils.Database(conn)
        self.conn = conn
        self.lock = threading.RLock()
        self._begin = "BEGIN IMMEDIATE" if self.path else "BEGIN"
        self._depth = 0  # savepoints open inside the current transaction (guarded by the lock)
        if self.path is None and from_image and _fresh_image() is not None:
            conn.deserialize(_fresh_image())  # a new in-memory store: copy the migrated empty schema at once
        else:
            self._migrate()

    def _migrate(self) -> None:
        with self.transaction():
            self.conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, name TEXT, applied_at TEXT)"
            )
            applied = {row[0] for row in self.conn.execute("SELECT version FROM schema_version")}
            known = {version for version, _, _ in MIGRATIONS}
            if applied - known:
                raise SchemaError(
                    f"{self.path}: written by a newer emulator (schema versions {sorted(applied - known)} unknown)"
                )
            for version, name, sql in sorted(MIGRATIONS):
                if version in applied:
                    continue
                for statement in _statements(sql):
                    self.conn.execute(statement)
                self.conn.execute(
                    "INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, datetime('now'))",
                    (version, name),
                )

    @property
    def version(self) -> int:
        return self.conn.execute("SELECT max(version) FROM schema_version").fetchone()[0]

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Holds the lock and one transaction (a savepoint when nested); commits on a clean exit.

        What sqlite-utils' `atomic()` does, with a savepoint named by its depth rather than a random token: the
        statements stay in sqlite3's statement cache (a flush opens thousands of these)."""
        with self.lock:
            conn = self.conn
            if not conn.in_transaction:
                # IMMEDIATE on a file: another process holding the file (a second Sandbox on the same path) makes
                # this wait for busy_timeout; a deferred BEGIN that later upgrades to a write fails at once instead
                conn.execute(self._begin)
                try:
                    yield conn
                except BaseException:
                    conn.rollback()  # a no-op when the error already ended the transaction
                    raise
                try:
                    conn.execute("COMMIT")
                except BaseException:
                    conn.rollback()
                    raise
                return
            self._depth += 1
            savepoint = f"emulator_{self._depth}"
            conn.execute(f"SAVEPOINT {savepoint}")
            try:
                yield conn
            except BaseException:
                # an error such as a RAISE(ROLLBACK) can end the whole transaction, savepoints included
                if conn.in_transaction:
                    conn.execute(f"ROLLBACK TO SAVEPOINT {savepoint}")
                    conn.execute(f"RELEASE SAVEPOINT {savepoint}")
                raise
            else:
                conn.execute(f"RELEASE SAVEPOINT {savepoint}")
            finally:
                self._depth -= 1

    def execute(self, sql: str, params: Any = ()) -> sqlite3.Cursor:
        with self.lock:
            return self.conn.execute(sql, params)

    def query(self, sql: str, params: Any = ()) -> list[dict]:
        with self.lock:
            cursor = self.conn.execute(sql, params)
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row)) for row in cursor.fetchall()]

    def get_meta(self, key: str, default: str | None = None) -> str | None:
        row = self.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else default

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction() as conn:
            conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def data_tables(self) -> list[str]:
        return [name for name in self.db.table_names() if name not in KEPT_ON_RESET and not name.startswith("sqlite_")]

    def reset(self) -> None:
        with self.transaction() as conn:
            for table in self.data_tables():
                conn.execute(f"DELETE FROM [{table}]")

    def close(self) -> None:
        with self.lock:
            self.conn.close()


@functools.lru_cache(maxsize=1)
def _fresh_image() -> bytes | None:
    """The bytes of an empty, fully migrated database, made once per process: a new in-memory store starts from
    them in ~0.1 ms instead of running every migration (the pytest `sandbox` fixture makes one per test). It is an
    immutable value, shared by nobody's data."""
    if not hasattr(sqlite3.Connection, "deserialize"):  # SQLite built without it: migrate every time
        return None
    template = Store(None, from_image=False)  # migrated the usual way
    image = template.conn.serialize()
    template.close()
    return image


def _statements(sql: str) -> list[str]:
    """Split a migration into statements (sqlite3.complete_statement knows about quotes and triggers)."""
    statements, buffer = [], ""
    for line in sql.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                statements.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        statements.append(buffer.strip())
    return statements
