"""The UART top's settings and pins, and ``lgn board-run`` against fake serial ports: one that answers as the
evaluator, one that answers wrong (the mismatch is caught and named by its row), one that never answers (the
timeout's message). The simulated board itself is in hdl_tests/test_uart.py."""

from __future__ import annotations

import numpy as np
import pytest

from lgn.cli import board as board_cli
from lgn.cli import main
from lgn.cli.common import save_graph
from lgn.compiler import boards, evaluate, uart
from lgn.compiler.errors import ParameterError
from tests.test_fpga import raw_samples, streamable


@pytest.mark.parametrize(
    "clock, baud, why",
    [(12_000_000, 4_000_000, "too fast"), (1_000_000, 300_000, "too fast"), (12_000_000, 1_400_000, "% off"),
     (1_000_000, 190_000, "% off")],
)  # fmt: skip
def test_a_baud_rate_the_clock_cannot_make_is_refused(clock, baud, why):
    with pytest.raises(ParameterError, match=why) as caught:
        uart.divider(clock, baud)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("clock, baud, cycles", [(12_000_000, 115_200, 104), (12_000_000, 3_000_000, 4),
                                                 (25_000_000, 921_600, 27), (27_000_000, 115_200, 234)])  # fmt: skip
def test_dividers(clock, baud, cycles):
    assert uart.divider(clock, baud) == cycles


def test_pin_files_hold_the_boards_pins():
    ice = boards.uart_pins("ice40", boards.BOARDS["icebreaker"], "up5k", 12_000_000)
    assert ice == "set_io clk 35\nset_io rx 6\nset_io tx 9\n"
    ulx3s = boards.uart_pins("ecp5", boards.BOARDS["ulx3s"], "25k", 25_000_000)
    assert 'LOCATE COMP "clk" SITE "G2";' in ulx3s and 'LOCATE COMP "rx" SITE "M1";' in ulx3s
    assert 'LOCATE COMP "tx" SITE "L4";' in ulx3s and 'FREQUENCY PORT "clk" 25 MHZ;' in ulx3s
    crab = boards.uart_pins("ecp5", boards.BOARDS["orangecrab"], "25k", 48_000_000)
    assert 'SITE "A9"' in crab and 'SITE "N17"' in crab and 'SITE "M18"' in crab and "Feather" in crab
    nano = boards.uart_pins("gowin", boards.BOARDS["tangnano9k"], "GW1NR-9", 27_000_000)
    assert nano == 'IO_LOC "clk" 52;\nIO_LOC "rx" 18;\nIO_LOC "tx" 17;\n'
    bare = boards.uart_pins("ice40", None, "hx8k", 12_000_000)
    assert bare is not None and bare.startswith("set_io clk ") and len(set(bare.split()[2::3])) == 3
    assert boards.uart_pins("ecp5", None, "25k", 25_000_000) is None
    with pytest.raises(ParameterError, match="carries an ecp5 part, not ice40"):
        boards.board("ulx3s", "ice40")


def test_each_board_has_openfpgaloaders_own_name():
    # openFPGALoader's board table (doc/boards.yml) is case-sensitive and has no "icebreaker": it programs the
    # iCEBreaker's flash as "ice40_generic", and the OrangeCrab is "orangeCrab"
    names = {name: spec.loader for name, spec in boards.BOARDS.items()}
    assert names == {"icebreaker": "ice40_generic", "ulx3s": "ulx3s", "orangecrab": "orangeCrab",
                     "tangnano9k": "tangnano9k"}  # fmt: skip


def test_the_uart_top_is_deterministic_and_says_its_divider():
    graph = streamable()
    link = uart.Uart(115_200, 12_000_000, board=boards.BOARDS["icebreaker"])
    one = uart.uart_top(graph, 2, link)
    assert one == uart.uart_top(graph, 2, link)
    assert "localparam DIVIDER = 104;" in one and "{6'd0, class_out}" in one


class FakePort:
    """A serial port whose board answers each ``n_features`` bytes with ``answer(row bytes)``, or never."""

    def __init__(self, n_features: int, answer=None):
        self.n, self.answer, self.pending, self.out = n_features, answer, b"", bytearray()

    def write(self, data: bytes) -> int:
        self.pending += data
        while len(self.pending) >= self.n:
            row, self.pending = self.pending[: self.n], self.pending[self.n :]
            if self.answer is not None:
                self.out.append(self.answer(np.frombuffer(row, np.uint8)))
        return len(data)

    def read(self, size: int = 1) -> bytes:
        got, self.out = bytes(self.out[:size]), self.out[size:]
        return got

    def reset_input_buffer(self) -> None:
        self.out.clear()


@pytest.fixture
def files(tmp_path):
    graph = streamable()
    save_graph(graph, str(tmp_path / "net.npz"))
    raw = raw_samples(40)
    header = ",".join(f"f{i}" for i in range(14))
    np.savetxt(tmp_path / "rows.csv", raw, fmt="%d", delimiter=",", header=header, comments="")
    return graph, str(tmp_path / "net.npz"), str(tmp_path / "rows.csv")


def _plug(monkeypatch, port):
    monkeypatch.setattr(board_cli, "open_serial", lambda name, baud, timeout: port)


def _evaluator(graph):
    return lambda row: int(evaluate.predict(graph, evaluate.encode(graph, row[None].astype(np.float64)))[0])


def test_board_run_agrees_with_a_board_that_answers_right(files, monkeypatch, capsys):
    graph, model, data = files
    _plug(monkeypatch, FakePort(14, _evaluator(graph)))
    assert main(["board-run", "/dev/fake", model, "--data", data, "--settle", "0", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "40 rows in" in out and "samples/s" in out and "board vs evaluator: 40 rows, 0 mismatches" in out


def test_board_run_names_the_rows_a_wrong_board_gets_wrong(files, monkeypatch, capsys):
    graph, model, data = files
    right, seen = _evaluator(graph), []

    def wrong(row):
        seen.append(row)
        return (right(row) + 1) % 3 if len(seen) in (4, 18) else right(row)

    _plug(monkeypatch, FakePort(14, wrong))
    assert main(["board-run", "/dev/fake", model, "--data", data, "--settle", "0", "--quiet"]) == 1
    out = capsys.readouterr().out
    assert "row 3: the board answered class" in out and "row 17:" in out
    assert "board vs evaluator: 40 rows, 2 mismatches" in out


def test_board_run_says_when_the_board_is_silent(files, monkeypatch, capsys):
    _, model, data = files
    _plug(monkeypatch, FakePort(14, None))
    assert main(["board-run", "/dev/fake", model, "--data", data, "--settle", "0", "--timeout", "0.1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("lgn: error: /dev/fake: no answer to row 0 (0 of 40 rows answered) within --timeout 0.1 s")


def test_board_run_refusals(files, tmp_path, capsys):
    graph, model, data = files
    pytest.importorskip("serial")
    assert main(["board-run", str(tmp_path / "no-such-port"), model, "--data", data]) == 2
    assert "cannot open the serial port" in capsys.readouterr().err
    raw = raw_samples(3).astype(np.float64)
    raw[1, 4] = 300.0
    np.savetxt(tmp_path / "big.csv", raw, fmt="%g", delimiter=",", header=",".join(f"f{i}" for i in range(14)),
               comments="")  # fmt: skip
    assert main(["board-run", "/dev/fake", model, "--data", str(tmp_path / "big.csv")]) == 2
    assert "row 1, feature 4: 300 is not a byte" in capsys.readouterr().err
    wide = graph.replace(encoder=graph.encoder.__class__(14, graph.encoder.feature, graph.encoder.threshold * 3))
    save_graph(wide, str(tmp_path / "wide.npz"))
    assert main(["board-run", "/dev/fake", str(tmp_path / "wide.npz"), "--data", data]) == 2
    assert "one byte per clock and cannot represent this model" in capsys.readouterr().err


@pytest.mark.parametrize(
    "extra, why",
    [(["--uart", "115200"], "uart without --board needs --clock-hz"),
     (["--uart", "4000000", "--board", "icebreaker"], "too fast"),
     (["--uart", "115200", "--board", "ulx3s"], "carries an ecp5 part, not ice40"),
     (["--board", "icebreaker"], "--board and --clock-hz go with --uart")],
)  # fmt: skip
def test_synth_uart_refusals(files, extra, why, tmp_path, capsys):
    _, model, _ = files
    code = main(["synth", model, "--target", "ice40", "--pnr", "--out", str(tmp_path / "out"), *extra])
    assert code == 2 and why in capsys.readouterr().err
