rule report:
    """results/report.html: the run's findings first, then each experiment's figures and
    interactive charts, the tables and the configuration, in one page that opens offline."""
    input:
        tables=expand("results/tables/{table}.csv", table=REPORT_TABLES),
        figures=report_figures(),
        summary="results/summary.md",
        captions=os.path.join(workflow.basedir, "workflow", "report", "captions.yaml"),
        template=os.path.join(workflow.basedir, "workflow", "report", "report.html.jinja"),
    output:
        "results/report.html",
    params:
        table_names=REPORT_TABLES,
        analysis=analysis_settings(),
        config=canonical(config),
    log:
        "results/logs/report.log",
    resources:
        mem_mb=2048,
        runtime=10,
    script:
        "../scripts/report.py"
