"""The figures, their style, summary.md, the report's first page and the README's figures."""
