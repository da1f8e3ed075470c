"""Write the manifest (rows, checksums) of all token shards."""
import sys

from pipeline.joblog import to_log

to_log(snakemake.log[0])

from pipeline.data.text import write_manifest  # noqa: E402

m = write_manifest(list(snakemake.input.train), list(snakemake.input.val), snakemake.input.tokenizer, snakemake.output[0])
print(m["tokens"], file=sys.stderr)
