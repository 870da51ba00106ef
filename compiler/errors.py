"""The project's error types: every user-facing failure is one of these, with a one-line message."""


class LgnError(Exception):
    """Base class of every error the tool reports to a user (CLI exit code 2)."""


class GraphError(LgnError):
    """A gate graph breaks an invariant of the IR (see docs/ir.md)."""


class GraphFormatError(GraphError):
    """A file that should hold a gate graph is truncated, foreign or malformed."""


class InputError(LgnError):
    """Input data handed to an evaluator or backend has the wrong shape, type or values."""
