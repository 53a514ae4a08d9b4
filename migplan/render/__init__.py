"""Plans, results and tables -> text, JSON, Markdown and drawings. Pure: no I/O, and
imports only the core.

The functions below are this package's names, each imported from its module when
first asked for: a command that prints a plan loads the text renderer, not the
fleet's, the linter's or the reports'."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
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

_MODULES = {
    "apply_outcome": "text",
    "fleet_plan_text": "fleet",
    "fleet_progress": "fleet",
    "fleet_summary": "fleet",
    "heads": "text",
    "lint_text": "lint",
    "log_text": "reports",
    "plan_lines": "text",
    "plan_markdown": "markdown",
    "plan_sql": "text",
    "plan_text": "text",
    "progress_line": "text",
    "rehearsal_failure": "text",
    "rehearsal_text": "text",
    "status_text": "reports",
    "step_label": "text",
    "summary": "text",
    "table": "text",
    "verify_text": "reports",
}

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


def __getattr__(name: str) -> object:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
