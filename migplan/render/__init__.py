"""Plans, results and tables -> text, JSON, Markdown and drawings. Pure: no I/O, and
imports only the core."""

from __future__ import annotations

from migplan.render.fleet import fleet_plan_text
from migplan.render.fleet import fleet_progress
from migplan.render.fleet import fleet_summary
from migplan.render.lint import lint_text
from migplan.render.markdown import plan_markdown
from migplan.render.reports import log_text
from migplan.render.reports import status_text
from migplan.render.reports import verify_text
from migplan.render.text import apply_outcome
from migplan.render.text import heads
from migplan.render.text import plan_lines
from migplan.render.text import plan_sql
from migplan.render.text import plan_text
from migplan.render.text import progress_line
from migplan.render.text import rehearsal_failure
from migplan.render.text import rehearsal_text
from migplan.render.text import step_label
from migplan.render.text import summary
from migplan.render.text import table

__all__ = [
    "apply_outcome",
    "fleet_plan_text",
    "fleet_progress",
    "fleet_summary",
    "heads",
    "lint_text",
    "log_text",
    "plan_lines",
    "plan_markdown",
    "plan_sql",
    "plan_text",
    "progress_line",
    "rehearsal_failure",
    "rehearsal_text",
    "status_text",
    "step_label",
    "summary",
    "table",
    "verify_text",
]
