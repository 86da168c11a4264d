"""Snakemake entry point: tonight into the history store, and what changed since last night."""

import os
import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821

from leaklab import history  # noqa: E402
from leaklab.tables import read_csv_table  # noqa: E402

store = Path(snakemake.params.history).resolve()  # noqa: F821
store.parent.mkdir(parents=True, exist_ok=True)
tables = {name: read_csv_table(path) for name, path in snakemake.input.items()}  # noqa: F821
key = history.night_key(Path(snakemake.scriptdir).parents[1], history.read_meta("results"),  # noqa: F821
                        date=os.environ.get("LEAKLAB_NIGHT_DATE"), config=snakemake.config)  # noqa: F821
night = history.append_night(store, key, tables)
found = history.regressions(store, night, min_change=history.min_change_from_config(snakemake.config))  # noqa: F821
found.to_csv(snakemake.output.regressions, index=False)  # noqa: F821
history.plot_trend(history.trend(store), snakemake.output.trend, found)  # noqa: F821
print(f"night {night}: {len(found)} change(s), {int(found['counts'].sum()) if len(found) else 0} counting",
      file=sys.stderr)
