rule run_experiment:
    """One variant, one profiler, one replicate: samples, marks and meta of the run.

    A failing, crashing, hanging or runaway run is stopped and recorded in meta.json;
    the job itself succeeds so that the other runs and the aggregation go on.
    """
    input:
        unpack(run_inputs),
    output:
        meta=f"{RUN_DIR}/meta.json",
        samples=f"{RUN_DIR}/samples.parquet",
        marks=f"{RUN_DIR}/marks.parquet",
        mappings=f"{RUN_DIR}/mappings.parquet",
    params:
        settings=run_params,
        profiler=profiler_params,
        specs=run_spec,
        sampler=canonical(config["sampler"]),
        limits=canonical(config["limits"]),
        stopping=stop_params,
    log:
        # the runner's own messages; the measured process's output is run.log in the run directory
        "results/logs/run/{experiment}/{variant}/{profiler}/rep{replicate}.log",
    threads: run_threads
    priority: run_priority
    resources:
        # one CPU-bound plain run at a time (profiles/default: measure=1) so no neighbour
        # slows what its timings say; one CPU-bound profiled run beside it (profile=1); runs
        # of a paced experiment, which waits for its own clock, beside both (paced=3)
        measure=lambda wildcards: run_slot(wildcards, "measure"),
        profile=lambda wildcards: run_slot(wildcards, "profile"),
        paced=lambda wildcards: run_slot(wildcards, "paced"),
        mem_mb=lambda wildcards: config["limits"]["mem_cap_mb"] + 512,
        runtime=lambda wildcards: int(config["limits"]["timeout_s"] // 60) + 5,
    script:
        "../scripts/run_experiment.py"
