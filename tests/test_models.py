"""The shipped models (models/*.npz) give the test accuracy models/README.md states, through the IR evaluator
on the whole test split from raw pixels (the C and Verilog checks of models/README.md run the same graphs)."""

import re
from pathlib import Path

import numpy as np
import pytest

from lgn.compiler import evaluate, formats

MODELS = Path(__file__).resolve().parent.parent / "models"
DATASETS = {
    "mnist-small": "mnist",
    "mnist-fast": "mnist",
    "mnist-tiny": "mnist",
    "mnist-lut6": "mnist",
    "mnist-lut4": "mnist",
    "mnist-ice40": "mnist",
    "fashion-mnist-small": "fashion-mnist",
}


def stated_accuracies() -> dict[str, float]:
    """model name -> the test accuracy of models/README.md's first table (the percentage before the validation
    one in parentheses)."""
    stated = {}
    for line in (MODELS / "README.md").read_text().splitlines():
        found = re.match(r"\| `([\w-]+)\.npz` \| [^|]+ \| [^|]+ \| \**([\d.]+)%\** \(", line)
        if found:
            stated[found.group(1)] = float(found.group(2)) / 100
    return stated


def test_every_shipped_model_is_listed_with_its_accuracy():
    assert sorted(stated_accuracies()) == sorted(p.stem for p in MODELS.glob("*.npz")) == sorted(DATASETS)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(DATASETS))
def test_a_shipped_model_gives_its_stated_accuracy(name):
    from lgn.training.data import encoded_test_split

    graph = formats.load_npz(MODELS / f"{name}.npz")
    _, bits, labels = encoded_test_split(graph.encoder, DATASETS[name], None)
    accuracy = float(np.mean(evaluate.predict(graph, bits) == labels))
    assert round(accuracy, 4) == pytest.approx(stated_accuracies()[name], abs=1e-9)
