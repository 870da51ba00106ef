"""Is the trained model any good? The checks that end a run: the discretized model against answering the
majority class always, and against the relaxed network it was discretized from.

A run that fails one is not an error (the checkpoint is still written), but it is never silent: each finding
is one plain sentence with its likely cause and the flag that fixes it, printed on stderr, recorded in the
metrics and the demo report, and under ``--strict`` it makes ``lgn train`` exit 1.
"""

from __future__ import annotations

import math

import numpy as np

GAP = 0.05  # a relaxed network this much more accurate than its discretization has not been learned as logic
TRIVIAL = 0.9  # the share of gates that stayed constants or pass-throughs beyond which the network did little


def majority_rate(train_labels: np.ndarray, test_labels: np.ndarray) -> tuple[int, float]:
    """(the most frequent training class, lowest index on ties; the share of ``test_labels`` that are it)."""
    counts = np.bincount(np.asarray(train_labels, dtype=np.int64))
    majority = int(np.argmax(counts))
    return majority, float(np.mean(np.asarray(test_labels) == majority)) if len(test_labels) else 0.0


def clearly_better(accuracy: float, constant: float, rows: int) -> bool:
    """Whether ``accuracy`` on ``rows`` rows is more than one standard error (and half a point) above the
    ``constant`` rate: a model within that distance of the constant may well be answering it."""
    error = math.sqrt(max(constant * (1 - constant), 1e-12) / max(rows, 1))
    return accuracy > constant + max(0.005, error)


def findings(
    discrete: float,
    relaxed: float,
    constant: float,
    constant_name: str,
    rows: int,
    gate_estimator: str,
    trivial_share: float | None,
) -> list[str]:
    """The sentences a run's final figures call for (none when the model is clearly useful).

    ``discrete`` and ``relaxed``: test accuracies of the chosen checkpoint; ``constant``: the majority-class
    rate on the same rows, whose class is ``constant_name``; ``trivial_share``: the share of its gates that are
    constants or pass-throughs (None when unknown)."""
    out = []
    lost = gate_estimator == "soft" and relaxed - discrete > GAP  # the relaxation knew more than the logic
    if not clearly_better(discrete, constant, rows):
        cause = _likely_cause(lost and relaxed > constant, trivial_share, gate_estimator)
        out.append(
            f"the discretized model ({discrete:.1%}) is not clearly better than always answering "
            f"{constant_name!r} ({constant:.1%} of the {rows:,} test rows): {cause}"
        )
        lost = False  # said once
    if lost:
        out.append(
            f"the relaxed network reaches {relaxed:.1%} but its discretization only {discrete:.1%}: the soft gates "
            "did not settle on logic functions; train with --estimator ste (the forward pass is then the "
            "discretized network) or more --steps"
        )
    return out


def _likely_cause(lost_in_discretization: bool, trivial_share: float | None, gate_estimator: str) -> str:
    if lost_in_discretization:
        return "the relaxed network learned what its discretization lost; train with --estimator ste"
    if trivial_share is not None and trivial_share > TRIVIAL:
        fix = "--init gaussian" + (" or --estimator ste" if gate_estimator != "ste" else " or more --steps")
        return f"{trivial_share:.0%} of the gates stayed constants or pass-throughs; try {fix}"
    return (
        "the columns may not predict the label, or the network is too small or trained too briefly; try more "
        "--steps, a larger --width, or --thresholds 32"
    )
