"""The project's error types: every user-facing failure is one of these, with a one-line message."""

from __future__ import annotations


class LgnError(Exception):
    """Base class of every error the tool reports to a user (CLI exit code 2)."""


class ParameterError(LgnError):
    """A parameter has a value the library cannot use.

    The message speaks of parameters by their Python names; ``parameters`` lists the names it mentions,
    so a front end can show its own spelling of them (the CLI shows ``--name``).
    """

    def __init__(self, message: str, *parameters: str):
        super().__init__(message)
        self.parameters = parameters


class GraphError(LgnError):
    """A gate graph breaks an invariant of the IR (see docs/ir.md)."""


class GraphFormatError(GraphError):
    """A file that should hold a gate graph is truncated, foreign or malformed."""


class InputError(LgnError):
    """Input data handed to an evaluator or backend has the wrong shape, type or values."""


class ToolMissingError(LgnError):
    """An outside tool or an optional Python package that a command needs is not installed."""
