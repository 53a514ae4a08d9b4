"""service: the use cases, each one composed of the layers below.

Plan (with the preflight that says what apply would refuse), apply and rollback
(lock, re-read, preflight, audit, run, stop or revert), resolve, status, fleets and
their members, promotion, verify, validate, saved plans. The library API in
`migplan/__init__.py` points here.

May import: `core`, `project`, `db`, `errors`, `compat`.
"""
