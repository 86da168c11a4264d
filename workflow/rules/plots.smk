# Every figure is written as PNG (for the report) and SVG beside it (for publication).


rule plot_experiment:
    """The figures of one experiment: its timeline (RSS over time and its key metrics per
    unit, by variant), its headline (each variant's deciding metric, fit and verdict) and
    the comparison of bug, fix and control on the same metrics.  One job draws the three:
    each job pays about 2 s of CPU to import matplotlib and seaborn before it draws."""
    input:
        samples="results/tables/samples.csv",
        units="results/tables/units.csv",
        growth="results/tables/growth.csv",
        verdicts="results/tables/variant_verdicts.csv",
    output:
        timeline="results/figures/timeline_{experiment}.png",
        timeline_svg="results/figures/timeline_{experiment}.svg",
        headline="results/figures/headline_{experiment}.png",
        headline_svg="results/figures/headline_{experiment}.svg",
        compare="results/figures/compare_{experiment}.png",
        compare_svg="results/figures/compare_{experiment}.svg",
    params:
        specs=command_specs(),
    log:
        "results/logs/plot_experiment_{experiment}.log",
    resources:
        mem_mb=2048,
        runtime=10,
    script:
        "../scripts/plot_experiment.py"


rule plot_growth_overview:
    """Growth per unit for every experiment and variant against its threshold, by verdict."""
    input:
        growth="results/tables/growth.csv",
    output:
        png="results/figures/growth_overview.png",
        svg="results/figures/growth_overview.svg",
    params:
        specs=command_specs(),
    log:
        "results/logs/plot_growth_overview.log",
    resources:
        mem_mb=1024,
        runtime=10,
    script:
        "../scripts/plot_growth_overview.py"


rule plot_summary:
    """The verdict matrix (one decisive verdict per variant) and the layer attribution."""
    input:
        verdicts="results/tables/variant_verdicts.csv",
        growth="results/tables/growth.csv",
        attribution="results/tables/attribution.csv",
    output:
        matrix="results/figures/verdict_matrix.png",
        matrix_svg="results/figures/verdict_matrix.svg",
        attribution="results/figures/attribution.png",
        attribution_svg="results/figures/attribution.svg",
    params:
        specs=command_specs(),
    log:
        "results/logs/plot_summary.log",
    resources:
        mem_mb=1024,
        runtime=10,
    script:
        "../scripts/plot_summary.py"


rule plot_profiles:
    """Heap timelines and top allocation sites as each profiler reports them."""
    input:
        heap_timeline="results/tables/heap_timeline.csv",
        top_sites="results/tables/top_sites.csv",
        runs="results/tables/runs.csv",
    output:
        timeline="results/figures/heap_{experiment}.png",
        timeline_svg="results/figures/heap_{experiment}.svg",
        sites="results/figures/top_sites_{experiment}.png",
        sites_svg="results/figures/top_sites_{experiment}.svg",
    params:
        specs=command_specs(),
    log:
        "results/logs/plot_profiles_{experiment}.log",
    resources:
        mem_mb=2048,
        runtime=10,
    script:
        "../scripts/plot_profiles.py"


rule plot_profiler_overhead:
    """What each profiler costs against plain, per unit of work."""
    input:
        overhead="results/tables/profiler_overhead.csv",
    output:
        png="results/figures/profiler_overhead.png",
        svg="results/figures/profiler_overhead.svg",
    params:
        specs=command_specs(),
    log:
        "results/logs/plot_profiler_overhead.log",
    resources:
        mem_mb=1024,
        runtime=10,
    script:
        "../scripts/plot_profiler_overhead.py"


rule plot_time_to_verdict:
    """Seconds to each experiment and variant's verdict, replayed from its recorded units."""
    input:
        table="results/tables/time_to_verdict.csv",
    output:
        png="results/figures/time_to_verdict.png",
        svg="results/figures/time_to_verdict.svg",
    log:
        "results/logs/plot_time_to_verdict.log",
    resources:
        mem_mb=1024,
        runtime=10,
    script:
        "../scripts/plot_time_to_verdict.py"


rule plot_cross_language:
    """Growth or retention of the same mechanism in each language, by verdict."""
    input:
        table="results/tables/cross_language.csv",
    output:
        png="results/figures/cross_language.png",
        svg="results/figures/cross_language.svg",
    log:
        "results/logs/plot_cross_language.log",
    resources:
        mem_mb=1024,
        runtime=10,
    script:
        "../scripts/plot_cross_language.py"
