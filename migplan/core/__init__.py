"""core: values and pure logic.

Revision ids and heads, the revision graph and the order of steps, plans, policy,
lint findings, parsed database URLs, environments, and the result types every other
layer passes around (ApplyResult, Run, EnvironmentStatus, FleetPlan, Report...).

May import: `migplan.errors`, `migplan.compat` (Alembic's graph algorithms, on
values). No files, connections, processes or printing: functions take values and
return values.
"""
