"""Snakemake entry point: tonight compared with earlier nights, drawn, then recorded.

Runs once every other output of the night exists (they are its inputs).  The
comparison and the trend see tonight in memory; the append to the history store comes
last, in one transaction, and a run set already recorded is not recorded again, so
re-running this step after a failure records one night.
"""

import json
import os
import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")

from leaklab import history
from leaklab.tables.tables import read_csv_table

params, given = snakemake.params, snakemake.input


def main() -> None:
    key = history.night_key(Path(snakemake.scriptdir).parents[1], history.read_meta(given.meta),
                            history.run_set_sha256(given.meta), date=os.environ.get("LEAKLAB_NIGHT_DATE"),
                            config_sha256=params.config_sha256)
    tables = {name: read_csv_table(getattr(given, name)) for name in ("growth", "runs", "controls")}
    stored_nights, stored_growth = history.load(params.history)
    already = key["runs_sha256"] in set(stored_nights.get("runs_sha256", []))
    nights, growth, night = history.with_night(stored_nights, stored_growth, key, tables["growth"])
    found = history.compare(nights, growth, night, min_change=history.min_change_from_config(params.analysis))
    found.to_csv(snakemake.output.regressions, index=False)
    history.plot_trend(history.trend_frame(nights, growth), snakemake.output.trend, found)
    recorded = history.append_night(params.history, key, tables)
    Path(snakemake.output.night).write_text(json.dumps(
        {"night_id": recorded, "runs_sha256": key["runs_sha256"], "recorded_now": not already,
         "store": str(Path(params.history).resolve())}, indent=2) + "\n")
    print(f"night {recorded}: {len(found)} change(s), {int(found['counts'].sum()) if len(found) else 0} counting",
          file=sys.stderr)


try:
    main()
except history.StoreError as error:  # a damaged store: one line, in the log Snakemake shows
    sys.exit(f"nightly_history: {error}")
