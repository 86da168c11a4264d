# The labelled accuracy benchmark: `make accuracy` (workflow/accuracy/config.yaml).


rule accuracy:
    """Precision and recall of the verdict on series and programs of known behaviour."""
    input:
        unpack(accuracy_inputs),
    output:
        table="results/tables/accuracy.csv",
        cases="results/tables/accuracy_cases.csv",
        figure="results/figures/accuracy.png",
        svg="results/figures/accuracy.svg",
    params:
        draws=config.get("accuracy", {}).get("draws", 50),
        seed=config.get("accuracy", {}).get("seed", 0),
        model=VERDICT_MODEL,
    log:
        "results/logs/accuracy.log",
    resources:
        mem_mb=2048,
        runtime=60,
    script:
        "../scripts/accuracy.py"
