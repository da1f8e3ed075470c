"""Rule claims: every enabled study's claims rows as one table and its Markdown rendering."""
from pipeline import job

with job.start("claims", snakemake=snakemake) as j:
    from pipeline.claims import assemble

    out = snakemake.output
    table = assemble(list(snakemake.input), out.parquet, out.md)
    j.tracker.log_metrics({"claims": table.num_rows}, step=0)
    j.tracker.log_artifact(out.parquet)
    j.tracker.log_artifact(out.md)
