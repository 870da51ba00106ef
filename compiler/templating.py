"""The jinja2 environment for the templates under ``templates/`` (C and Verilog)."""

from __future__ import annotations

from pathlib import Path

import jinja2

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


def environment(subdir: str) -> jinja2.Environment:
    """Templates of ``templates/<subdir>``: strict (an unknown name is an error), no escaping (code, not HTML)."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES / subdir)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
