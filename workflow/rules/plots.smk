rule plot_timeline:
    """RSS over time and the experiment's key metrics per unit, by variant."""
    input:
        samples="results/tables/samples.csv",
        units="results/tables/units.csv",
    output:
        report(
            "results/figures/timeline_{experiment}.png",
            caption="../report/timeline.rst",
            category="{experiment}",
        ),
    log:
        "results/logs/plot_timeline_{experiment}.log",
    resources:
        mem_mb=2048,
        runtime=10,
    script:
        "../scripts/plot_timeline.py"


rule plot_growth_overview:
    """Growth per unit for every experiment and variant, coloured by verdict."""
    input:
        growth="results/tables/growth.csv",
    output:
        report(
            "results/figures/growth_overview.png",
            caption="../report/growth_overview.rst",
            category="Overview",
        ),
    log:
        "results/logs/plot_growth_overview.log",
    resources:
        mem_mb=1024,
        runtime=10,
    script:
        "../scripts/plot_growth_overview.py"
