# Version sweep: `snakemake version_sweep` (or `make sweep`); off the default target.


rule sweep_venv:
    """A venv holding one version of the swept library: from a PyPI wheel, or, for a
    version with no wheel for this Python, from a wheel built once from its source
    distribution into the cache outside results/ (leaklab.process.wheels; log under the cache)."""
    output:
        touch("results/sweep/venvs/{package}-{version}/.ready"),
    params:
        venv=lambda wildcards: sweep.venv_dir(wildcards.package, wildcards.version),
        python=sys.executable,
    log:
        "results/logs/sweep_venv_{package}-{version}.log",
    resources:
        mem_mb=4096,
        runtime=60,
    shell:
        "(rm -rf {params.venv}/bin {params.venv}/lib && {params.python} -m venv {params.venv}"
        " && ({params.venv}/bin/pip install --quiet --only-binary=:all: {wildcards.package}=={wildcards.version}"
        " || {params.venv}/bin/pip install --quiet"
        " $({params.python} -m leaklab.process.wheels {wildcards.package} {wildcards.version} | tail -n 1)))"
        " > {log} 2>&1"


rule sweep_run:
    """One variant of the swept experiment under one version of the library."""
    input:
        venv="results/sweep/venvs/{package}-{version}/.ready",
    output:
        meta=f"{SWEEP_RUN_DIR}/meta.json",
        samples=f"{SWEEP_RUN_DIR}/samples.parquet",
        marks=f"{SWEEP_RUN_DIR}/marks.parquet",
    params:
        settings=lambda wildcards: canonical(leaklab.measure.config.run_params(sweep.sweep_config(config), wildcards.experiment,
                                                                       "plain", wildcards.variant)),
        stopping=lambda wildcards: canonical(leaklab.measure.config.stop_plan(sweep.sweep_config(config), wildcards.experiment,
                                                                      "plain", wildcards.variant)),
        python=lambda wildcards: os.path.abspath(f"{sweep.venv_dir(wildcards.package, wildcards.version)}/bin/python"),
        sampler=canonical(config["sampler"]),
        limits=canonical(config["limits"]),
    log:
        "results/logs/sweep_run/{package}-{version}/{experiment}/{variant}/rep{replicate}.log",
    threads: run_threads
    resources:
        # as run_experiment: a paced experiment's runs wait for their own clock and go
        # beside each other and the CPU-bound ones (profiles/default: paced=3)
        measure=lambda wildcards: run_slot(wildcards, "measure"),
        paced=lambda wildcards: run_slot(wildcards, "paced"),
        mem_mb=lambda wildcards: config["limits"]["mem_cap_mb"] + 512,
        runtime=lambda wildcards: int(config["limits"]["timeout_s"] // 60) + 5,
    script:
        "../scripts/sweep_run.py"


rule version_sweep:
    """Growth by library version: results/tables/version_sweep.csv and its figure."""
    input:
        meta=sweep_outputs(),
    output:
        table="results/tables/version_sweep.csv",
        figure="results/figures/version_sweep.png",
        figure_svg="results/figures/version_sweep.svg",
    params:
        analysis=lambda wildcards: sweep_settings(),
    log:
        "results/logs/version_sweep.log",
    resources:
        mem_mb=2048,
        runtime=10,
    script:
        "../scripts/version_sweep.py"
