rule aggregate:
    """Tidy tables from every run: results/leaklab.duckdb and results/tables/*.csv."""
    input:
        meta=run_outputs("meta.json"),
        samples=run_outputs("samples.parquet"),
        marks=run_outputs("marks.parquet"),
    output:
        db="results/leaklab.duckdb",
        tables=expand("results/tables/{table}.csv", table=TABLES),
    params:
        analysis=analysis_settings(),
    log:
        "results/logs/aggregate.log",
    resources:
        mem_mb=2048,
        runtime=10,
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
