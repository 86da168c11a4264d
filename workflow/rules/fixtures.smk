rule rocksdb_fixture:
    """A RocksDB database whose keys hold only unmerged Merge operands."""
    output:
        directory("results/fixtures/rocksdb_merge/keys{n_keys}"),
    params:
        settings=lambda wildcards: leaklab.config.experiment_params(config, "rocksdb_merge"),
    log:
        "results/logs/rocksdb_fixture_keys{n_keys}.log",
    resources:
        mem_mb=1024,
        runtime=15,
    script:
        "../scripts/rocksdb_fixture.py"


rule command_setup:
    """A command experiment's build step (e.g. compiling the user's program), once."""
    output:
        touch("results/commands/{experiment}/setup.done"),
    params:
        command=setup_command,
    log:
        "results/logs/setup_{experiment}.log",
    resources:
        mem_mb=2048,
        runtime=30,
    shell:
        "({params.command}) > {log} 2>&1"
