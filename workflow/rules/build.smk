rule build_native:
    """A native reproduction (Go with cgo, or C++) compiled from native/<program>/;
    rebuilt when any of its sources changes. versions.json records the compiler."""
    input:
        lambda wildcards: leaklab.process.build.sources(wildcards.program, NATIVE_ROOT),
    output:
        binary="results/build/{program}/{program}",
        versions="results/build/{program}/versions.json",
    params:
        native_root=NATIVE_ROOT,
        mem_cap_mb=config["limits"]["mem_cap_mb"],  # the measurements' cap; time: leaklab.process.build.TIMEOUT_S
    log:
        "results/logs/build_{program}.log",
    priority: 2  # the CPU-bound runs wait for it: before any run that does not
    resources:
        mem_mb=2048,
        runtime=20,
    script:
        "../scripts/build_native.py"
