# The aggregation reads what measured programs wrote: it runs contained like one, with
# limits of its own (it reads every run, so it may need longer than one run).
AGGREGATE_LIMITS = {"timeout_s": 1800, "mem_cap_mb": max(2048, config["limits"]["mem_cap_mb"])}


rule aggregate:
    """Tidy tables from every run: results/leaklab.duckdb and results/tables/*.csv."""
    input:
        meta=run_outputs("meta.json"),
        samples=run_outputs("samples.parquet"),
        marks=run_outputs("marks.parquet"),
        mappings=run_outputs("mappings.parquet"),
    output:
        db="results/leaklab.duckdb",
        tables=expand("results/tables/{table}.csv", table=TABLES),
    params:
        analysis=analysis_settings(),
        limits=AGGREGATE_LIMITS,
    log:
        "results/logs/aggregate.log",
    resources:
        mem_mb=AGGREGATE_LIMITS["mem_cap_mb"],
        runtime=AGGREGATE_LIMITS["timeout_s"] // 60,
    script:
        "../scripts/aggregate.py"


rule cross_language:
    """The same mechanism in Python, Go and C++ side by side (results/tables/cross_language.csv)."""
    input:
        growth="results/tables/growth.csv",
        top_sites="results/tables/top_sites.csv",
    output:
        "results/tables/cross_language.csv",
    log:
        "results/logs/cross_language.log",
    resources:
        mem_mb=1024,
        runtime=10,
    script:
        "../scripts/cross_language.py"
