rule rocksdb_fixture:
    """A RocksDB database whose keys hold only unmerged Merge operands (built under the
    measurements' memory cap and time limit)."""
    output:
        directory("results/fixtures/rocksdb_merge/keys{n_keys}"),
    params:
        settings=lambda wildcards: canonical(rocksdb_fixture_settings()),
        limits=canonical(config["limits"]),
    log:
        "results/logs/rocksdb_fixture_keys{n_keys}.log",
    priority: 2  # the CPU-bound runs wait for it: before any run that does not
    resources:
        mem_mb=lambda wildcards: config["limits"]["mem_cap_mb"] + 512,
        runtime=lambda wildcards: int(config["limits"]["timeout_s"] // 60) + 5,
    script:
        "../scripts/rocksdb_fixture.py"


rule command_setup:
    """A command experiment's build step (e.g. compiling the user's program), once,
    contained like a measured program (leaklab.process.contained). Its outcome is recorded, never
    raised: a failed setup costs its own experiment's runs (setup_failed), no other
    experiment its tables, and runs again on the next pipeline run."""
    output:
        "results/commands/{experiment}/setup.json",
    params:
        command=setup_command,
        limits=canonical(config["limits"]),
    log:
        "results/logs/setup_{experiment}.log",
    priority: 2  # its runs wait for it: before any run that does not
    resources:
        mem_mb=lambda wildcards: config["limits"]["mem_cap_mb"] + 512,
        runtime=lambda wildcards: int(config["limits"]["timeout_s"] // 60) + 5,
    script:
        "../scripts/command_setup.py"
