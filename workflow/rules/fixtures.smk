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
