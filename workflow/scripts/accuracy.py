"""Snakemake entry point: the labelled accuracy benchmark (synthetic and real tiers)."""

import sys

sys.stderr = open(snakemake.log[0], "w")

import pandas as pd

from leaklab.benchmarks import accuracy, accuracy_plot
from leaklab.tables.tables import read_csv_table

params = snakemake.params
synthetic = accuracy.synthetic_rows(params.draws, params.seed)
sweep = read_csv_table(snakemake.input.sweep) if "sweep" in snakemake.input.keys() else None
real = accuracy.real_rows(read_csv_table(snakemake.input.variant_verdicts), sweep)
cases = accuracy.by_case(synthetic)
scores = accuracy.score(synthetic)
real_summary = pd.DataFrame([{"tier": "real", "verdict": "all", "n_true": len(real),
                              "n_called": int(real["correct"].sum()) if len(real) else 0}])
pd.concat([scores, real_summary], ignore_index=True).to_csv(snakemake.output.table, index=False)
pd.concat([cases, real], ignore_index=True).to_csv(snakemake.output.cases, index=False)
accuracy_plot.confusion(cases, real, snakemake.output.figure)
print(scores.to_string(), file=sys.stderr)
print(real.to_string(), file=sys.stderr)
