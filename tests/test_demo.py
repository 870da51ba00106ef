"""The main job in a tiny configuration: every pair of implementations agrees and the report has every row."""

import shutil

import pytest

from lgn.cli import main

pytest.importorskip("torch")
pytestmark = [
    pytest.mark.hdl,
    pytest.mark.skipif(
        shutil.which("iverilog") is None or shutil.which("yosys") is None,
        reason="iverilog and yosys are needed (bash .ci/bootstrap installs them)",
    ),
]

ROWS = [
    "accuracy: relaxed (continuous) network, torch",
    "accuracy: discretized network, torch",
    "accuracy: IR evaluator (simplified graph)",
    "accuracy: compiled C",
    "accuracy: Verilog on Verilator",
    "mismatches: discretized torch vs IR (exported) | 0 |",
    "mismatches: IR exported vs IR simplified | 0 |",
    "mismatches: IR vs C (scores and class) | 0 |",
    "mismatches: IR vs Verilog on Verilator | 0 |",
    "mismatches: IR vs Verilog on Icarus (100 samples) | 0 |",
    "gates exported",
    "gates after simplification",
    "C throughput, one core",
    "C throughput, all",
    "LUT6, our mapping: encoder / gate network / GroupSum / argmax / whole design",
    "LUT6, whole design, yosys reading our LUT-native cells",
]
GATE_LEVEL_ROWS = {
    "6": ["yosys on the gate-level Verilog | skipped for k-input LUTs"],
    "2": [
        "yosys LUT6 / FF: gate network",
        "yosys LUT6 / FF: GroupSum",
        "yosys LUT6 / FF: argmax",
        "yosys LUT6 / FF: whole design (flat)",
    ],
}


@pytest.mark.parametrize("arity", ["6", "2"])
def test_tiny_demo_on_digits(tmp_path, capsys, arity):
    """The demo's own network (six-input gates, learned wiring) and two-input gates, whose gate-level Verilog
    yosys also synthesizes part by part."""
    out = tmp_path / "demo"
    code = main(
        [
            "demo",
            "--dataset",
            "digits",
            "--arity",
            arity,
            "--layers",
            "2",
            "--width",
            "100",
            "--steps",
            "150",
            "--icarus-sample",
            "100",
            "--quiet",
            "--out",
            str(out),
        ]
    )
    assert code == 0, capsys.readouterr().out[-2000:]
    report = (out / "report.md").read_text()
    for row in ROWS + GATE_LEVEL_ROWS[arity]:
        assert row in report, row
    for artifact in (
        "model.safetensors",
        "graph.npz",
        "graph.simplified.npz",
        "c/lgn_net.c",
        "c/Makefile",
        "verilog/lgn_net.v",
        "training_curves.png",
        "gates_per_layer.png",
    ):
        assert (out / artifact).exists(), artifact
    assert "every pair of implementations agrees" in capsys.readouterr().out
    engine = next(line for line in report.splitlines() if "iCE40 UP5K, LUT engine" in line)
    if shutil.which("nextpnr-ice40") and shutil.which("icepack"):
        assert "of 5,280 logic cells" in engine and " MHz" in engine, engine
        assert (out / "up5k" / "lgn_net.bin").stat().st_size > 1000 and (out / "up5k" / "lgn_program.bin").exists()
    else:
        assert "not placed: " in engine and "is not installed" in engine, engine


def test_demo_on_a_table_speaks_of_rows_and_reproduces_on_its_test_rows(tmp_path, capsys):
    """``lgn demo --data``: the table's own defaults (not the image network), the C library fed float32
    features, rows not images, the held-out rows written to test.csv for the reproduce lines, plots embedded."""
    import csv

    import numpy as np

    rng = np.random.default_rng(4)
    amount, kind = rng.uniform(0, 50, 400).round(2), rng.choice(["u", "v"], 400)
    with (tmp_path / "t.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["amount", "kind", "label"])
        writer.writerows(zip(amount, kind, np.where((amount > 20) ^ (kind == "u"), "hi", "lo")))
    out = tmp_path / "demo"
    args = ["demo", "--data", str(tmp_path / "t.csv"), "--label", "label", "--steps", "300", "--no-synth", "--quiet"]
    assert main([*args, "--out", str(out)]) == 0, capsys.readouterr().out[-2000:]
    report = (out / "report.md").read_text()
    assert "2 x 300 gates of 2 inputs" in report and "Test split: 80 rows" in report
    assert "C throughput, one core, float32 features to classes" in report and "M rows/s" in report
    assert "images" not in report
    assert f"--data {out}/test.csv --backend c" in report
    assert "![Accuracy during training](training_curves.png)" in report
    with (out / "test.csv").open() as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["amount", "kind", "label"] and len(rows) == 81
    capsys.readouterr()
    assert main(["verify", str(out / "model.safetensors"), "--data", str(out / "test.csv"), "--backend", "c"]) == 0
    assert capsys.readouterr().out.strip().endswith(" 0 mismatches")


def test_conv_demo_on_digits(tmp_path, capsys):
    """--arch conv: the main job on a conv logic net (smaller than its own defaults, so that it is quick);
    every implementation agrees with the evaluator on the unrolled trees."""
    out = tmp_path / "demo"
    argv = ["demo", "--arch", "conv", "--dataset", "digits", "--conv", "8:3:2", "--widths", "200,100", "--steps",
            "60", "--icarus-sample", "50", "--no-synth", "--quiet", "--out", str(out)]  # fmt: skip
    code = main(argv)
    assert code == 0, capsys.readouterr().out[-2000:]
    report = (out / "report.md").read_text()
    for row in ROWS[:9] + ["mismatches: IR vs Verilog on Icarus (50 samples) | 0 |"]:
        assert row in report, row
    said = capsys.readouterr().out
    assert "conv 8:3:2 (OR pool 2), then 200 + 100 (arity 2)" in said and "every pair of implementations agrees" in said
