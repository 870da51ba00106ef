"""lgn: logic gate networks, trained in PyTorch, compiled to bit-parallel C and Verilog.

One installed namespace. Its parts, lowest first (no part imports one above it; a test walks the imports):

- ``lgn.compiler``: the gate-graph IR, the passes, the C and Verilog backends and the verifiers (numpy only).
- ``lgn.kernels``: the gate math in pure torch and the operators that run it fast (CUDA, vectorised C++).
- ``lgn.training``: datasets, encoders, layers, the trainer, checkpoints and the export to the IR.
- ``lgn`` itself (this folder): the application layer, the ``lgn`` command line, the demo and the
  scikit-learn estimator ``lgn.LogicClassifier`` (imported on first use: ``import lgn`` stays light).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lgn.compiler.lowering import VERSION as __version__

if TYPE_CHECKING:
    from lgn.estimator import LogicClassifier

__all__ = ["LogicClassifier", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "LogicClassifier":
        from lgn.estimator import LogicClassifier

        return LogicClassifier
    raise AttributeError(f"module 'lgn' has no attribute {name!r}")
