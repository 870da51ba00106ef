"""FPGA figures for trained models (not a test), side by side in one run. See docs/benchmarks.md.

    python bench/fpga.py                        # the demo model (out/demo) and every graph under models/
    python bench/fpga.py MODEL_OR_GRAPH ...     # the given ones
    python bench/fpga.py --quick                # skip yosys and the circuit's place and route (our LUT
                                                # mapping and the LUT engine only)

Per model: LUTs by part (encoder, gate network, GroupSum, argmax) and of the whole design, three ways: our
LUT6 mapping of the lowered design (compressor-tree GroupSum, comparator-tree argmax), yosys reading our
LUT-native Verilog of the whole design (our LUT6 or SB_LUT4 cells, checked and counted, not re-mapped), and,
for networks of 2-input gates, yosys on the gate-level Verilog (generic LUT6: `synth -flatten -noabc; abc -lut 6`
with ABC's fast LUT script, per part and for the whole design; xilinx: `synth_xilinx`, iCE40: `synth_ice40`,
each with the same LUT step (hdl_tools.TARGETS); yosys
elaborates k-input LUTs into multiplexer trees, minutes per thousand, so k-input networks skip it); then the
streaming top placed and
routed on an iCE40 UP5K (HX8K when it does not fit): logic cells, flip-flops, Fmax and latency; and the LUT
engine (`--core engine`: the network as a program in the UP5K's SPRAM, evaluated one LUT at a time) placed and
routed on the UP5K. Every figure includes the encoder unless its row says otherwise. Writes bench/results/fpga.json
(fpga-quick.json with --quick).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from lgn.cli.common import load_any
from lgn.compiler import fpga, hardware, hdl_tools, pipeline
from lgn.compiler.errors import LgnError, ToolMissingError

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
# Published points (their authors' figures; see shared docs/anchors.md).
ANCHORS = [
    ("DWN (LUT-6 nodes), xcvu9p, out of context", "97.9%", "about 1,400 LUT6", "no"),
    ("DWN 'sm'", "97.1%", "692 LUTs", "no"),
    ("a DWN re-implementation, Artix-7 xc7a35t, placed and routed", "97.70%", "2,246 LUTs (1,079 the encoder)", "yes"),
]


def default_models() -> list[Path]:
    found = [ROOT / "out" / "demo" / "model.safetensors"] + sorted((ROOT / "models").glob("*.npz"))
    return [p for p in found if p.exists()]


def measure(path: Path, quick: bool) -> dict:
    graph = pipeline.simplify(load_any(str(path)))
    row: dict = {"model": str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path), "gates": graph.n_gates}
    row["ours_lut6"] = hardware.part_sizes(graph, 6)
    row["ours_lut4"] = hardware.part_sizes(graph, 4)
    print(f"  {path.name}: our LUT6 {row['ours_lut6']['whole design']}, LUT4 {row['ours_lut4']['whole design']}",
          file=sys.stderr, flush=True)  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="lgn-engine-") as tmp:
        row["pnr_engine"] = _place(graph, "up5k", Path(tmp), "engine")
    if quick:
        return row
    for target in ("xilinx", "ice40"):
        part, _ = fpga.synth_lut_native(graph, target, timeout=3600)
        row[f"native_{target}"] = {"whole design": part.luts}
    for target in ("generic", "xilinx", "ice40") if graph.arity <= 2 else ():
        parts = hdl_tools.synth_report(graph, target=target, timeout=3600)
        row[f"yosys_{target}"] = {p.name: p.luts for p in parts}
        print(f"  {path.name}: yosys {target} done", file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory(prefix="lgn-fpga-") as tmp:
        for device in ("up5k", "hx8k"):
            row[f"pnr_{device}"] = _place(graph, device, Path(tmp) / device, "auto")
            if row[f"pnr_{device}"]["fits"]:
                break
    return row


def _place(graph, device: str, out: Path, core: str) -> dict:
    try:
        result = fpga.place_and_route(graph, device, out, timeout=3600, core=core)
    except ToolMissingError:
        raise
    except LgnError as exc:  # does not fit (the engine: its program is too large)
        return {"fits": False, "why": str(exc)}
    return {
        "fits": True, "core": result.core, "logic_cells": result.logic_cells,
        "available": result.logic_cells_available, "luts": result.luts, "ffs": result.ffs, "ram": result.ram,
        "spram": result.spram, "fmax_mhz": result.fmax_mhz, "latency_cycles": result.latency_cycles,
        "cycles_per_sample": result.cycles_per_sample,
    }  # fmt: skip


WAYS = (
    ("LUT6, ours", "ours_lut6"),
    ("LUT6, yosys", "yosys_generic"),
    ("Xilinx, yosys", "yosys_xilinx"),
    ("Xilinx, yosys on our LUT6 cells", "native_xilinx"),
    ("LUT4, ours", "ours_lut4"),
    ("iCE40, yosys on our SB_LUT4 cells", "native_ice40"),
    ("LUT4 iCE40, yosys", "yosys_ice40"),
)


def _cell(value) -> str:
    return f"{value:,}" if isinstance(value, (int, np.integer)) else "-"


def table(rows: list[dict]) -> str:
    parts = ["encoder", "gate network", "GroupSum", "argmax", "whole design"]
    lines = [
        "| model | gates | LUTs | " + " | ".join(parts) + " |",
        "|---|---|---|" + "---|" * len(parts),
    ]
    for r in rows:
        for label, key in WAYS:
            if key not in r:
                continue
            values = {k.replace(" (flat)", ""): v for k, v in r[key].items()}
            lines.append(
                f"| {r['model']} | {r['gates']:,} | {label} | " + " | ".join(_cell(values.get(p)) for p in parts) + " |"
            )
    lines += [
        "",
        "| model | device | core | logic cells | LUT4 | flip-flops | Fmax | latency |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        for key, device in (("pnr_up5k", "up5k"), ("pnr_hx8k", "hx8k"), ("pnr_engine", "up5k")):
            p = r.get(key)
            if p is None:
                continue
            if not p["fits"]:
                why = p["why"] if key == "pnr_engine" else ""
                lines.append(f"| {r['model']} | {device} | {key.removeprefix('pnr_')} | does not fit {why} | | | | |")
                continue
            fmax = f"{p['fmax_mhz']:.1f} MHz" if p["fmax_mhz"] else "-"
            cells = f"{p['logic_cells']:,} of {p['available']:,}"
            if p["core"] == "engine":
                rate = f", {p['fmax_mhz'] * 1e6 / p['cycles_per_sample']:,.0f} samples/s" if p["fmax_mhz"] else ""
                latency = f"{p['latency_cycles']:,} cycles; {p['cycles_per_sample']:,} a sample{rate}"
                cells += f" (+ {p['ram']} block RAMs, {p['spram']} SPRAMs)"
            else:
                latency = f"{p['latency_cycles']} cycles after the last of {p['cycles_per_sample']} bytes"
            sizes = f"{cells} | {p['luts']:,} | {p['ffs']:,}"
            lines.append(f"| {r['model']} | {device} | {p['core']} | {sizes} | {fmax} | {latency} |")
    lines += ["", "| published | accuracy | LUTs | encoder included |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in ANCHORS]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="*", type=Path)
    parser.add_argument(
        "--quick", action="store_true", help="our LUT mapping and the LUT engine only (no yosys on the circuit)"
    )
    args = parser.parse_args(argv)
    models = args.models or default_models()
    if not models:
        parser.error("no models given and none found (run lgn demo, or ship models under models/)")
    rows = [measure(path.resolve(), args.quick) for path in models]
    print(table(rows))
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / ("fpga-quick.json" if args.quick else "fpga.json")  # a quick run keeps the full one
    path.write_text(json.dumps(rows, indent=1))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
