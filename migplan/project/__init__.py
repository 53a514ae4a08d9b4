"""project: what is on disk in a project.

migplan.yaml (YAML with line numbers, the JSON Schema, ${VAR}, one rewritten value),
the revision files (what each declares, read without importing it when possible),
the graph built from them, lint findings, and the cache that keeps all of it fast.

May import: `core`, `errors`, `compat`. Never a database.
"""
