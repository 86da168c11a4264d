"""Nightly history: every night's tables kept across runs, and what changed since the last night.

``results/`` is rebuilt by every pipeline run, so it cannot tell whether a growth figure
is new.  The history store keeps every night; comparing a night with the previous one
turns "RSS grows by 12 MiB per pass" into "RSS grows by 12 MiB per pass *since commit
abc123*".  One module per concern:

- ``key``: a night's identity (the run set's hash) and its who/what/where;
- ``store``: the DuckDB file, appended one night per transaction;
- ``regressions``: what changed against the previous night, and the exit status;
- ``trend``: growth across nights, as a table and a figure.
"""

from leaklab.history.key import git_state, night_key, read_meta, run_set_sha256
from leaklab.history.regressions import (REGRESSION_COLUMNS, compare, exit_code, min_change_from_config,
                                         regressions)
from leaklab.history.store import StoreError, append_night, history_table, load, read_history, with_night
from leaklab.history.trend import TREND_COLUMNS, plot_trend, trend, trend_frame

__all__ = ["REGRESSION_COLUMNS", "StoreError", "TREND_COLUMNS", "append_night", "compare", "exit_code", "git_state",
           "history_table", "load", "min_change_from_config", "night_key", "read_history", "read_meta",
           "regressions", "run_set_sha256", "plot_trend", "trend", "trend_frame", "with_night"]
