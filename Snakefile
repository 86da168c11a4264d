# leaklab: prove, measure and explain memory leaks in long-running processes.
# Run: snakemake --cores 4   (settings in profiles/default/ load automatically)

from snakemake.utils import min_version

min_version("9.0")


include: "workflow/rules/configfile.smk"  # config.yaml's syntax, with file and line


configfile: "config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/fixtures.smk"
include: "workflow/rules/build.smk"
include: "workflow/rules/run.smk"
include: "workflow/rules/aggregate.smk"
include: "workflow/rules/plots.smk"
include: "workflow/rules/summary.smk"
include: "workflow/rules/sweep.smk"
include: "workflow/rules/nightly.smk"
include: "workflow/rules/accuracy.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        all_outputs(),
    default_target: True


onstart:
    # Snakemake waits for running jobs on SIGTERM; a hung job must not hold it (each job
    # stops its own tree when told to).
    import leaklab.process.contained

    leaklab.process.contained.stop_jobs_on_sigterm()


onsuccess:
    # Every job finished; the pipeline still fails when a measured run did not end well
    # (`leaklab run` says the same when there was nothing to do: no onsuccess then).
    if leaklab.process.outcome.report_failed():
        sys.exit(1)
