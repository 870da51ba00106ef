"""The logic-gate-network compiler: gate-graph IR, reference evaluator, passes and backends.

Never imports torch (a test enforces it): the compiler runs wherever numpy does.
"""

from .errors import GraphError, GraphFormatError, InputError, LgnError
from .evaluate import output_bits, predict, scores
from .formats import load_graph, load_npz, save_npz
from .ir import Encoder, GateGraph
from .pipeline import simplify

__all__ = [
    "Encoder",
    "GateGraph",
    "GraphError",
    "GraphFormatError",
    "InputError",
    "LgnError",
    "load_graph",
    "load_npz",
    "output_bits",
    "predict",
    "save_npz",
    "scores",
    "simplify",
]
