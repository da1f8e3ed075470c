# Every enabled study contributes rows; one table and its Markdown rendering.
rule claims:
    input:
        expand("results/{study}/claims.parquet", study=ENABLED),
    output:
        parquet=report("results/claims.parquet", caption="../report/claims.rst", category="Claims"),
        md="results/claims.md",
    log:
        "logs/claims.log",
    script:
        "../scripts/claims.py"
