"""The logic-gate-network compiler: gate-graph IR, reference evaluator, passes and backends.

Installed as ``lgn.compiler``. Never imports torch, nor any other part of lgn (a test walks the imports):
the compiler runs wherever numpy does.
"""

from .errors import GraphError, GraphFormatError, InputError, LgnError, ParameterError
from .evaluate import encode, output_bits, predict, scores
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
    "ParameterError",
    "load_graph",
    "load_npz",
    "encode",
    "output_bits",
    "predict",
    "save_npz",
    "scores",
    "simplify",
]
