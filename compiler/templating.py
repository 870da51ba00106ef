"""The jinja2 environment for the templates of ``lgn.templates`` (C and Verilog), read as package data."""

from __future__ import annotations

from importlib.resources import files

import jinja2


def environment(subdir: str) -> jinja2.Environment:
    """Templates of ``lgn.templates/<subdir>``: strict (an unknown name is an error), no escaping (code,
    not HTML)."""
    folder = files("lgn.templates") / subdir
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(folder)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
