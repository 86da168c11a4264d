"""The tables the aggregation writes, by name.

Apart from :mod:`leaklab.tables.tables` so that parsing the Snakefile, which needs only the
names, does not import pandas and scipy (most of a dry run's time)."""

TABLES = ("runs", "samples", "marks", "units", "replicate_growth", "growth", "variant_verdicts", "comparisons",
          "controls", "sensitivity", "time_to_verdict", "attribution",
          "heap_timeline", "top_sites", "site_timeline", "profiler_summary", "profiler_overhead", "agreement",
          "visibility", "mapping_kinds", "processes", "mapping_sites")
# the tables a profiled run writes into its own directory; summary: heaptrack's peak and leaked totals
PROFILE_TABLES = ("heap_timeline", "top_sites", "summary", "site_timeline")
