"""Snakemake entry point: the labelled accuracy benchmark (synthetic and real tiers)."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821

import pandas as pd  # noqa: E402

from leaklab.benchmarks import accuracy, accuracy_plot  # noqa: E402
from leaklab.tables.tables import read_csv_table  # noqa: E402

params = snakemake.params  # noqa: F821
synthetic = accuracy.synthetic_rows(params.draws, params.seed)
sweep = read_csv_table(snakemake.input.sweep) if "sweep" in snakemake.input.keys() else None  # noqa: F821
real = accuracy.real_rows(read_csv_table(snakemake.input.variant_verdicts), sweep)  # noqa: F821
cases = accuracy.by_case(synthetic)
scores = accuracy.score(synthetic)
real_summary = pd.DataFrame([{"tier": "real", "verdict": "all", "n_true": len(real),
                              "n_called": int(real["correct"].sum()) if len(real) else 0}])
pd.concat([scores, real_summary], ignore_index=True).to_csv(snakemake.output.table, index=False)  # noqa: F821
pd.concat([cases, real], ignore_index=True).to_csv(snakemake.output.cases, index=False)  # noqa: F821
accuracy_plot.confusion(cases, real, snakemake.output.figure)  # noqa: F821
print(scores.to_string(), file=sys.stderr)
print(real.to_string(), file=sys.stderr)
