"""Random shifts of encoded training images (training.augment)."""

import numpy as np
import pytest
import torch

from lgn.compiler.errors import ParameterError
from lgn.training import augment, encoding


def _encoder(side: int, thresholds) -> encoding.Encoder:
    """Every pixel of a side x side image against each threshold, feature-major."""
    n = side * side
    feature = np.repeat(np.arange(n), len(thresholds))
    return encoding.Encoder(n, feature, np.tile(np.asarray(thresholds, dtype=float), n))


def test_the_middle_table_is_the_identity_and_a_shift_moves_every_pixel():
    side, radius = 5, 2
    enc = _encoder(side, [0.5, 1.5])
    tables = augment.shift_tables(enc, radius)
    assert tables.shape == ((2 * radius + 1) ** 2, side * side * 2)
    assert (tables[len(tables) // 2] == np.arange(side * side * 2)).all()
    image = np.random.default_rng(0).integers(0, 3, (1, side * side))
    bits = torch.as_tensor(encoding.encode(enc, image), dtype=torch.uint8)
    for k, (dy, dx) in enumerate((dy, dx) for dy in range(-radius, radius + 1) for dx in range(-radius, radius + 1)):
        moved = np.zeros((side, side), dtype=image.dtype)
        src = image.reshape(side, side)
        for r in range(side):
            for c in range(side):
                if 0 <= r - dy < side and 0 <= c - dx < side:
                    moved[r, c] = src[r - dy, c - dx]
        expected = encoding.encode(enc, moved.reshape(1, -1))
        got = augment.shift_batch(bits, torch.as_tensor(tables), torch.tensor([k]))
        assert (got.numpy() == expected).all(), (dy, dx)


def test_a_crop_reads_background_from_outside_it():
    enc = encoding.center_crop(_encoder(6, [0.5]), 4)
    tables = augment.shift_tables(enc, 1)
    n_inputs = len(enc.feature)
    assert (tables == n_inputs).any() and tables.max() == n_inputs
    assert (tables[4] == np.arange(n_inputs)).all()


def test_features_that_are_not_an_image_are_refused():
    with pytest.raises(ParameterError, match="shift needs square images"):
        augment.shift_tables(encoding.Encoder(10, np.arange(10), np.zeros(10)), 1)


def test_training_with_shifts_runs_and_a_bad_shift_is_a_clear_error(tmp_path, capsys):
    from lgn.cli import main

    args = ["train", "--dataset", "digits", "--layers", "2", "--width", "60", "--steps", "30", "--no-progress"]
    assert main([*args, "--shift", "1", "--out", str(tmp_path / "m.st")]) == 0
    assert main([*args, "--shift", "9", "--out", str(tmp_path / "n.st")]) == 2
    assert "shift" in capsys.readouterr().err
    assert main(["train", "--dataset", "iris", "--width", "30", "--shift", "1", "--out", str(tmp_path / "i.st")]) == 2
    assert "shift applies to images; iris is a table" in capsys.readouterr().err
