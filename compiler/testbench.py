"""The cocotb testbench for an emitted lgn module, run by :func:`lgn.compiler.hdl_sim.simulate` as the test
module ``lgn.compiler.testbench``: drives every vector, checks every score and the class against the IR
evaluator's answers (computed before the simulation), records what it saw.

Data in: the .npz named by LGN_TB_DATA (inputs as little-endian bytes per vector, expected scores and
classes, the interface). Results out: the .npz named by LGN_TB_OUT.
"""

import os
import random

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, ReadOnly, RisingEdge, Timer


def _split(value: int, n: int, width: int) -> list[int]:
    mask = (1 << width) - 1
    return [(value >> (width * c)) & mask for c in range(n)]


def _unsigned(value) -> int:
    """A port's value as an unsigned int (one-bit ports come back as a scalar Logic)."""
    return value.to_unsigned() if hasattr(value, "to_unsigned") else int(value)


def _read(dut, n_classes: int, score_width: int, with_scores: bool) -> tuple[list[int], int]:
    """The scores (zeros for a module with only ``class_out``) and the class."""
    scores = _split(_unsigned(dut.scores.value), n_classes, score_width) if with_scores else [0] * n_classes
    return scores, _unsigned(dut.class_out.value)


async def _stream(dut, samples: int) -> tuple[list[int], list[int], list[int]]:
    """The stream harness (lgn_stream_harness.v) feeds the top from a file with its own clock and reset: wait
    for done, and read its record of (class, edge of the last feature, edge of the class) per sample."""
    if samples:
        await RisingEdge(dut.done)
    path = str(cocotb.plusargs["lgn_out"])
    rows = [line.split() for line in open(path).read().splitlines()] if samples else []
    return [int(r[0]) for r in rows], [int(r[1]) for r in rows], [int(r[2]) for r in rows]


@cocotb.test()
async def check_vectors(dut):
    data = np.load(os.environ["LGN_TB_DATA"])
    if bool(data["stream"]):
        classes, in_edges, out_edges = await _stream(dut, len(data["inputs"]))
        np.savez(
            os.environ["LGN_TB_OUT"],
            scores=np.zeros((len(classes), int(data["n_classes"])), dtype=np.int64),
            classes=np.asarray(classes, dtype=np.int64),
            in_edges=np.asarray(in_edges[: len(out_edges)], dtype=np.int64),
            out_edges=np.asarray(out_edges, dtype=np.int64),
        )
        assert classes == data["classes"].tolist(), "the streamed classes disagree with the IR evaluator"
        return
    inputs = [int.from_bytes(row.tobytes(), "little") for row in data["inputs"]]
    n_classes, score_width = int(data["n_classes"]), int(data["score_width"])
    pipelined, latency = bool(data["pipelined"]), int(data["latency"])
    with_scores = bool(data["with_scores"])
    port = dut.features if bool(data["raw_input"]) else dut.x
    seen_scores, seen_classes, out_edges, in_edges = [], [], [], []
    if not pipelined:
        for value in inputs:
            port.value = value
            await Timer(1, unit="ns")
            scores, klass = _read(dut, n_classes, score_width, with_scores)
            seen_scores.append(scores)
            seen_classes.append(klass)
    else:
        rng = random.Random(int(data["seed"]))
        bubbles = str(data["mode"]) == "bubbles"
        Clock(dut.clk, 10, unit="ns").start()  # cocotb 2: start() schedules the clock itself
        dut.rst.value = 1
        dut.in_valid.value = 0
        port.value = 0
        await ClockCycles(dut.clk, 2)
        await FallingEdge(dut.clk)
        dut.rst.value = 0
        sent, edge = 0, 0
        limit = 4 * len(inputs) + 4 * latency + 20
        while len(seen_classes) < len(inputs) and edge < limit:
            send = sent < len(inputs) and (not bubbles or rng.random() < 0.6)
            dut.in_valid.value = int(send)
            if send:
                port.value = inputs[sent]
                in_edges.append(edge)
                sent += 1
            await RisingEdge(dut.clk)
            await ReadOnly()
            if dut.out_valid.value == 1:
                scores, klass = _read(dut, n_classes, score_width, with_scores)
                seen_scores.append(scores)
                seen_classes.append(klass)
                out_edges.append(edge)
            await FallingEdge(dut.clk)
            edge += 1
    seen_scores = np.asarray(seen_scores, dtype=np.int64).reshape(-1, n_classes)
    seen_classes = np.asarray(seen_classes, dtype=np.int64)
    np.savez(
        os.environ["LGN_TB_OUT"],
        scores=seen_scores,
        classes=seen_classes,
        in_edges=np.asarray(in_edges, dtype=np.int64),
        out_edges=np.asarray(out_edges, dtype=np.int64),
    )
    assert len(seen_classes) == len(inputs), f"{len(seen_classes)} results for {len(inputs)} vectors"
    if pipelined:
        delays = np.asarray(out_edges) - np.asarray(in_edges)
        assert (delays == latency - 1).all(), f"latency: outputs came {set(delays.tolist())} edges after inputs"
    wrong_scores = (seen_scores != data["scores"]).any(axis=1) if with_scores else False
    wrong = int((wrong_scores | (seen_classes != data["classes"])).sum())
    assert wrong == 0, f"{wrong} of {len(inputs)} vectors disagree with the IR evaluator"
