"""Snakemake entry point: results/report.html (leaklab.report.report_page)."""

import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")

import vl_convert

from leaklab.model import settings
from leaklab.report import report_page

resolved = settings.resolve(snakemake.params.analysis)
inputs = snakemake.input
vega_js = vl_convert.javascript_bundle(vl_version=report_page.VEGA_LITE_VERSION).replace("</script", "<\\/script")
page = report_page.build(
    tables={name: Path(path) for name, path in zip(snakemake.params.table_names, inputs.tables)},
    figures=[Path(p) for p in inputs.figures],
    summary_md=Path(inputs.summary),
    captions_path=Path(inputs.captions),
    template_path=Path(inputs.template),
    experiments={name: {"unit": s.unit, "warmup_units": s.warmup_units} for name, s in resolved.items()},
    config=snakemake.params.config,
    vega_js=vega_js,
)
Path(snakemake.output[0]).write_text(page)
