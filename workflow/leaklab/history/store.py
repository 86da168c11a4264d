"""The history store: a DuckDB file that only ever grows, one night at a time.

``results/`` is rebuilt by every pipeline run; the store lives at a path of its own
(``history.path``).  Each night appends one row to ``nights`` (its key, see
``history.key``) and its tables as ``<table>_history`` (``growth_history``,
``runs_history``, ...) with ``night_id`` as their first column.

A later night may carry columns the earlier ones did not (the tables grow with the
project): they are added to the history table, earlier nights read as NULL there; a
column whose type changes is widened (integers to DOUBLE, anything else to VARCHAR)
rather than truncating a value.  An append is one transaction: a crash in the middle
leaves the earlier nights exactly as they were.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Iterator, Mapping
from pathlib import Path

import pandas as pd

# types of the key's columns, for a first night where one of them is unknown (NULL)
NIGHTS_TYPES = {"seq": "BIGINT", "date": "DATE", "recorded_at": "TIMESTAMP", "commit": "VARCHAR",
                "dirty": "BOOLEAN", "diff_sha256": "VARCHAR", "versions_json": "VARCHAR",
                "hostname": "VARCHAR", "kernel": "VARCHAR", "cpus": "BIGINT", "mem_total_bytes": "BIGINT",
                "config_sha256": "VARCHAR", "runs_sha256": "VARCHAR"}

_INTEGER_TYPES = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT",
                  "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT"}
_FLOAT_TYPES = {"FLOAT", "REAL", "DOUBLE"}


class StoreError(RuntimeError):
    """The history store cannot be read or written (a damaged or foreign file); one line."""


@contextlib.contextmanager
def _store_errors(path: str | Path) -> Iterator[None]:
    """DuckDB's errors on the store as one line naming the file: a damaged store is the
    user's to repair or move aside, not a traceback to read."""
    import duckdb

    try:
        yield
    except duckdb.Error as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise StoreError(f"history store {path}: cannot be used ({type(err).__name__}: {first}); "
                         f"move it aside to start a new history") from None


def quote(name: str) -> str:
    return '"' + str(name).replace('"', '""') + '"'


def _base_type(sql_type: str) -> str:
    return sql_type.split("(")[0].strip().upper()


def _widened(existing: str, incoming: str) -> str:
    """The type a column needs so both its stored and its incoming values fit unchanged."""
    if existing == incoming:
        return existing
    a, b = _base_type(existing), _base_type(incoming)
    numeric = _INTEGER_TYPES | _FLOAT_TYPES | {"DECIMAL"}
    if a in _INTEGER_TYPES and b in _INTEGER_TYPES:
        return "BIGINT" if a != "HUGEINT" and b != "HUGEINT" else "HUGEINT"
    if a in numeric and b in numeric:
        return "DOUBLE"
    return "VARCHAR"


def _incoming_types(con, frame: pd.DataFrame) -> dict[str, str | None]:
    """DuckDB's type for each column of ``frame``; None for a column with no value at all.

    A column that is all NULL tonight (``profile_error`` on a night without errors) says
    nothing about its type: DuckDB would call it INTEGER, and the first real value a
    later night brings (a string) would no longer fit.  An empty table's numeric columns
    still say what they are (their pandas dtype).
    """
    described = con.execute("DESCRIBE SELECT * FROM incoming").fetchall()
    types: dict[str, str | None] = {}
    for name, sql_type, *_ in described:
        column = frame[name]
        unknown = column.isna().all() and (column.dtype == object or len(column) > 0)
        types[name] = None if unknown else sql_type
    return types


def _append_table(con, table: str, frame: pd.DataFrame, night_id: str,
                  hints: Mapping[str, str] | None = None) -> None:
    """Create or extend ``table`` so ``frame`` fits, then insert it (inside the caller's transaction).

    ``hints`` name the type of a column that may arrive all NULL (``dirty`` outside git).
    """
    hints = hints or {}
    frame = frame.copy()
    frame.columns = [str(c) for c in frame.columns]
    frame = frame.drop(columns=["night_id"], errors="ignore")
    frame.insert(0, "night_id", night_id)
    con.register("incoming", frame)
    try:
        incoming = _incoming_types(con, frame)
        exists = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ? "
                             "AND table_schema = 'main'", [table]).fetchone()[0]
        if not exists:
            stored = {c: (t or hints.get(c, "VARCHAR")) for c, t in incoming.items()}
            columns = ", ".join(f"{quote(c)} {t}" for c, t in stored.items())
            con.execute(f"CREATE TABLE {quote(table)} ({columns})")
        else:
            stored = dict(con.execute("SELECT column_name, data_type FROM information_schema.columns "
                                      "WHERE table_name = ? AND table_schema = 'main'", [table]).fetchall())
            for column, sql_type in incoming.items():
                if column not in stored:
                    stored[column] = sql_type or hints.get(column, "VARCHAR")
                    con.execute(f"ALTER TABLE {quote(table)} ADD COLUMN {quote(column)} {stored[column]}")
                elif sql_type is not None and (wider := _widened(stored[column], sql_type)) != stored[column]:
                    con.execute(f"ALTER TABLE {quote(table)} ALTER COLUMN {quote(column)} SET DATA TYPE {wider}")
                    stored[column] = wider
        if len(frame):
            select = ", ".join(f"CAST({'NULL' if t is None else quote(c)} AS {stored[c]}) AS {quote(c)}"
                               for c, t in incoming.items())
            con.execute(f"INSERT INTO {quote(table)} BY NAME SELECT {select} FROM incoming")
    finally:
        con.unregister("incoming")


def history_table(name: str) -> str:
    """The history table a night's table goes to: ``growth`` -> ``growth_history``."""
    return "nights" if name == "nights" else f"{name}_history"


def _recorded_night(con, runs_sha256: str | None) -> str | None:
    """The night_id already recorded for this run set, if any."""
    if runs_sha256 is None or "runs_sha256" not in _columns(con, "nights"):
        return None
    found = con.execute("SELECT night_id FROM nights WHERE runs_sha256 = ?", [runs_sha256]).fetchone()
    return None if found is None else str(found[0])


def append_night(history_path: str | Path, key: dict, tables: Mapping[str, pd.DataFrame]) -> str:
    """Append one night (its key and its tables) to the history store; returns its night_id.

    The file and its tables are created when missing.  Everything -- the ``nights`` row,
    every ``<name>_history`` table, any column added or widened -- happens in one
    transaction, so the store holds either the whole night or none of it, and a crash
    mid-append leaves the previous nights intact.  A night whose run set
    (``runs_sha256``) is already in the store is not appended again: its night_id is
    returned, so re-running the history step records one night.  Another night under
    a night_id already in the store is refused (it would be its own previous night).
    A table given as a frame without columns (a table a night did not produce) is
    skipped; one with columns but no rows still creates or extends its history table.
    """
    import duckdb

    if "night_id" not in key or "date" not in key:
        raise ValueError("key needs at least night_id and date (see night_key)")
    night_id = str(key["night_id"])
    if "nights" in tables:
        raise ValueError("'nights' is the key's table; pass the night's tables only")
    path = Path(history_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    row = {k: (json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) else v) for k, v in key.items()}
    row["date"] = dt.date.fromisoformat(str(row["date"])[:10])
    if row.get("recorded_at") is not None:
        stamp = pd.Timestamp(row["recorded_at"])
        if stamp.tzinfo is not None:
            stamp = stamp.tz_convert("UTC").tz_localize(None)
        row["recorded_at"] = stamp.to_pydatetime()
    with _store_errors(path):
        return _append(duckdb.connect(str(path)), path, night_id, row, key, tables)


def _append(con, path: Path, night_id: str, row: dict, key: dict, tables: Mapping[str, pd.DataFrame]) -> str:
    """The transaction of :func:`append_night` on an open store (closed afterwards)."""
    try:
        con.execute("BEGIN TRANSACTION")
        try:
            known = con.execute("SELECT count(*) FROM information_schema.tables "
                                "WHERE table_name = 'nights' AND table_schema = 'main'").fetchone()[0]
            seq = 1
            if known:
                recorded = _recorded_night(con, key.get("runs_sha256"))
                if recorded is not None:
                    con.execute("ROLLBACK")
                    return recorded
                if con.execute("SELECT count(*) FROM nights WHERE night_id = ?", [night_id]).fetchone()[0]:
                    raise ValueError(f"night {night_id!r} is already in {path}")
                seq = int(con.execute("SELECT coalesce(max(seq), 0) + 1 FROM nights").fetchone()[0])
            nights = pd.DataFrame([{"night_id": night_id, "seq": seq,
                                    **{k: v for k, v in row.items() if k not in ("night_id", "seq")}}])
            _append_table(con, "nights", nights.drop(columns="night_id"), night_id, NIGHTS_TYPES)
            for name, frame in tables.items():
                if frame is None or not len(frame.columns):
                    continue
                _append_table(con, history_table(name), frame, night_id)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    finally:
        con.close()
    return night_id


# ---------------------------------------------------------------------------- reading


def connect_read_only(history_path: str | Path):
    import duckdb

    path = Path(history_path)
    if not path.exists():
        raise FileNotFoundError(f"no history store at {path}")
    with _store_errors(path):
        return duckdb.connect(str(path), read_only=True)


def has_table(con, name: str) -> bool:
    return bool(con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ? "
                            "AND table_schema = 'main'", [name]).fetchone()[0])


def read_history(history_path: str | Path, table: str = "growth") -> pd.DataFrame:
    """One history table joined with its nights' key (date, commit, host, ...), oldest first."""
    con = connect_read_only(history_path)
    try:
        name = history_table(table)
        if not has_table(con, name):
            return pd.DataFrame()
        if name == "nights":
            return con.execute("SELECT * FROM nights ORDER BY date, seq").df()
        return con.execute(f"SELECT n.date, n.seq, n.commit, n.dirty, n.hostname, h.* "
                           f"FROM {quote(name)} h JOIN nights n USING (night_id) "
                           f"ORDER BY n.date, n.seq").df()
    finally:
        con.close()


def _columns(con, table: str) -> set[str]:
    return {c for (c,) in con.execute("SELECT column_name FROM information_schema.columns "
                                      "WHERE table_name = ? AND table_schema = 'main'", [table]).fetchall()}


def load(history_path: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every night and every growth row of the store (empty frames when there is none yet)."""
    if not Path(history_path).exists():
        return pd.DataFrame(columns=["night_id", "seq", "date"]), pd.DataFrame(columns=["night_id"])
    con = connect_read_only(history_path)
    try:
        with _store_errors(history_path):
            nights = con.execute("SELECT * FROM nights").df() if has_table(con, "nights") \
                else pd.DataFrame(columns=["night_id", "seq", "date"])
            growth = con.execute("SELECT * FROM growth_history").df() if has_table(con, "growth_history") \
                else pd.DataFrame(columns=["night_id"])
    finally:
        con.close()
    return nights, growth


def with_night(nights: pd.DataFrame, growth: pd.DataFrame, key: dict,
               tonight: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """The store's tables as they will be once ``key``'s night is appended, and its night_id.

    Lets the comparison and the trend figure be made before the night is recorded (the
    append comes last, once every other output of the night exists).  A night whose
    run set is already recorded is not added twice: its recorded night_id is returned.
    """
    if "runs_sha256" in nights and key.get("runs_sha256") is not None:
        recorded = nights.loc[nights["runs_sha256"] == key["runs_sha256"], "night_id"]
        if len(recorded):
            return nights, growth, str(recorded.iloc[0])
    seq = int(pd.to_numeric(nights["seq"]).max()) + 1 if len(nights) else 1
    row = pd.DataFrame([{**key, "seq": seq, "date": pd.Timestamp(key["date"])}])
    added = tonight.drop(columns=["night_id"], errors="ignore").assign(night_id=key["night_id"])
    frames = [f for f in (nights, row) if len(f)]
    growth_frames = [f for f in (growth, added) if len(f)]
    return (pd.concat(frames, ignore_index=True),
            pd.concat(growth_frames, ignore_index=True) if growth_frames else added, str(key["night_id"]))
