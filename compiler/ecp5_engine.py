"""The LUT engine (:mod:`.lut_engine`) on an ECP5: the program and the node values in DP16KD block RAM.

The engine is the UP5K's (``templates/verilog/lgn_engine.v.j2``) with its memories swapped: ECP5 has no SPRAM,
but its DP16KD (18 Kbit each: 56 on a 25F, 108 on a 45F, 208 on an 85F) can be initialised by the bitstream, so
the program is part of the ``.bit`` and no program upload follows reset (``templates/verilog/
lgn_engine_ecp5.v.j2``). lgn writes the DP16KD instances itself rather than leaving a behavioural memory to
yosys: their count is then known before synthesis (a model that does not fit is refused in one line), and the
program's INITVAL layout is the one documented for the cell (1024 x 18: word ``a`` in the 20-bit slot
``a % 16`` of ``INITVAL_{a // 16}``), not a choice of yosys' memory mapper.

- program: the low ``row_bits`` bits of the 64-bit rows (the widest row's), in blocks of 1024 rows, each
  ``ceil(row_bits / 18)`` DP16KD at 1024 x 18 side by side;
- node values: one copy per fan-in, each ``ceil(nodes / 16384)`` DP16KD at 16384 x 1 (written on port A, read
  on port B); the engine writes the constants 0 and 1 after reset (two cycles) and every other node before
  reading it, so these need no initial values.

yosys ships no simulation model of DP16KD (a blackbox in both 0.23 and 0.70), so :func:`dp16kd_model` is ours,
of the cell as the engine uses it (widths 18 and 1, NOREG, writes on port A only); the netlist check simulates
yosys' own LUT4 and flip-flop models around it.
"""

from __future__ import annotations

import dataclasses

from .errors import LgnError
from .ir import GateGraph
from .lowering import VERSION, model_hash
from .lut_engine import EngineProgram, _bits, build_program
from .templating import environment

ROM_WORDS = 1024  # DP16KD at 1024 x 18
NODE_BITS = 16384  # DP16KD at 16384 x 1
MAX_COUNT = 1 << 16  # 16-bit feature counter; the other counters are as wide as their counts need


@dataclasses.dataclass(frozen=True)
class Ecp5Engine:
    """A program and how it sits in DP16KD: ``rom_blocks`` x ``rom_slices`` for the program, ``arity`` x
    ``banks`` for the node values."""

    program: EngineProgram
    row_bits: int
    rom_blocks: int
    rom_slices: int
    banks: int

    @property
    def program_rams(self) -> int:
        return self.rom_blocks * self.rom_slices

    @property
    def node_rams(self) -> int:
        return self.program.arity * self.banks

    @property
    def block_rams(self) -> int:
        return self.program_rams + self.node_rams

    def describe(self) -> str:
        p = self.program
        return (
            f"{self.block_rams} DP16KD: the program {self.program_rams} ({len(p.rows):,} rows of {self.row_bits} "
            f"bits), the node values {self.node_rams} ({p.arity} copies of {p.first_gate + p.n_luts:,} bits)"
        )


def layout(graph: GateGraph, available: int | None = None, part: str = "") -> Ecp5Engine:
    """``graph``'s program in DP16KD. With ``available`` (the part's DP16KD count), raises :class:`LgnError`
    naming what the engine needs when it exceeds it."""
    p = build_program(graph, max_rows=None)
    row_bits = max(1, max(int(r).bit_length() for r in p.rows.tolist()))
    n_nodes = p.first_gate + p.n_luts
    engine = Ecp5Engine(p, row_bits, -(-len(p.rows) // ROM_WORDS), -(-row_bits // 18), -(-n_nodes // NODE_BITS))
    if available is not None and engine.block_rams > available:
        raise LgnError(f"the LUT engine needs {engine.describe()}; the {part} has {available}")
    return engine


def _bus(port: str, width: int, wire: str) -> str:
    return ", ".join(f".{port}{i}({wire}[{i}])" for i in reversed(range(width)))


def _initvals(engine: Ecp5Engine) -> list[list[list[tuple[str, str]]]]:
    """Per block, per 18-bit slice: the nonzero ``INITVAL_xx`` parameters as (name, 80 hex digits); word ``w``
    of a block in bits ``[20 * (w % 16) +: 18]`` of ``INITVAL_{w // 16}``."""
    rows = [int(r) for r in engine.program.rows.tolist()]
    blocks = []
    for blk in range(engine.rom_blocks):
        chunk = rows[blk * ROM_WORDS : (blk + 1) * ROM_WORDS]
        slices = []
        for s in range(engine.rom_slices):
            words = [(row >> (18 * s)) & 0x3FFFF for row in chunk]
            params = []
            for x in range(-(-len(words) // 16)):
                value = sum(w << (20 * k) for k, w in enumerate(words[16 * x : 16 * x + 16]))
                if value:
                    params.append((f"INITVAL_{x:02X}", f"{value:080x}"))
            slices.append(params)
        blocks.append(slices)
    return blocks


def engine_verilog(graph: GateGraph, engine: Ecp5Engine | None = None, module: str = "lgn_top") -> str:
    """The ECP5 engine's Verilog (``module``, ``{module}_program``, ``{module}_bits``), with the ports of the
    streaming top; the program is in its DP16KD's INITVAL parameters."""
    e = engine or layout(graph)
    p = e.program
    if p.n_features >= MAX_COUNT:
        raise LgnError(f"the LUT engine counts features in 16 bits: {p.n_features:,} is too many")
    n = p.node_width
    addr_width = _bits(len(p.rows))
    rom_address = "{addr[9:0], 4'd0}" if addr_width >= 10 else f"{{{10 - addr_width}'d0, addr, 4'd0}}"
    return (
        environment("verilog")
        .get_template("lgn_engine_ecp5.v.j2")
        .render(
            module=module, version=VERSION, model_hash=model_hash(graph), n_features=p.n_features,
            n_input_rows=p.n_input_rows, n_luts=p.n_luts, n_output_rows=p.n_output_rows,
            rows_per_lut=p.rows_per_lut, arity=p.arity, node_width=n, banks=e.banks, first_gate=p.first_gate,
            score_width=p.score_width, class_width=p.class_width, r_width=_bits(p.rows_per_lut + 1),
            latency=p.latency, row_bits=e.row_bits, rom_blocks=e.rom_blocks, rom_slices=e.rom_slices,
            addr_width=addr_width, rom_address=rom_address, initvals=_initvals(e), bus=_bus,
            input_width=_bits(p.n_input_rows + 1), lut_width=_bits(p.n_luts), output_width=_bits(p.n_output_rows),
            node_address=lambda wire: f"{wire}[13:0]" if n >= 14 else f"{{{14 - n}'d0, {wire}}}",
        )
    )  # fmt: skip


def dp16kd_model() -> str:
    """Our simulation model of DP16KD as the engine uses it: ports A and B at 18 bits (word address
    ``AD[13:4]``) or 1 bit (bit address ``AD[13:0]``), NOREG (data the cycle after the address), writes on port
    A only, ``INITVAL_00`` .. ``INITVAL_3F`` loaded as 1024 words of 18 bits, one per 20-bit slot. Other widths
    stop the simulation. (yosys' cell libraries declare DP16KD as a blackbox only.)"""
    names = lambda port, width: ", ".join(f"{port}{i}" for i in reversed(range(width)))  # noqa: E731
    ports = []
    for p in "AB":
        ports.append(f"  input {names('DI' + p, 18)}, {names('AD' + p, 14)},")
        ports.append(f"  input CE{p}, OCE{p}, CLK{p}, WE{p}, RST{p}, CS{p}2, CS{p}1, CS{p}0,")
        ports.append(f"  output {names('DO' + p, 18)}{',' if p == 'A' else ''}")
    params = [f'  parameter {n} = "{v}";' for n, v in (("REGMODE_A", "NOREG"), ("REGMODE_B", "NOREG"),
              ("WRITEMODE_A", "NORMAL"), ("WRITEMODE_B", "NORMAL"), ("GSR", "ENABLED"))]  # fmt: skip
    params += ["  parameter DATA_WIDTH_A = 18;", "  parameter DATA_WIDTH_B = 18;"]
    params += [f"  parameter [319:0] INITVAL_{x:02X} = 320'h0;" for x in range(64)]
    loads = [f"    word[{16 * x + k}] = INITVAL_{x:02X}[{20 * k + 17}:{20 * k}];" for x in range(64) for k in range(16)]
    wires = []
    for p in "AB":
        q = p.lower()
        wires.append(f"  wire [13:0] ad{q} = {{{names('AD' + p, 14)}}};")
        wires.append(f"  wire [17:0] di{q} = {{{names('DI' + p, 18)}}};")
        wires.append(f"  reg [17:0] do{q};")
        wires.append(f"  assign {{{names('DO' + p, 18)}}} = do{q};")
    body = """
  reg [17:0] word [0:1023];
  initial begin
    if ((DATA_WIDTH_A != 18 && DATA_WIDTH_A != 1) || (DATA_WIDTH_B != 18 && DATA_WIDTH_B != 1)) begin
      $display("DP16KD model: only widths 18 and 1 are modelled"); $finish;
    end
{loads}
  end
  // lgn never mixes widths on one block, so where a 1-bit address sits in the 18-bit word is immaterial here
  always @(posedge CLKA) if (CEA) begin
    if (DATA_WIDTH_A == 18) begin
      if (WEA) word[ada[13:4]] <= dia;
      doa <= word[ada[13:4]];
    end else begin
      if (WEA) word[ada[13:4]][ada[3:0]] <= dia[0];
      doa <= {{17'd0, word[ada[13:4]][ada[3:0]]}};
    end
  end
  always @(posedge CLKB) if (CEB) begin
    if (DATA_WIDTH_B == 18) dob <= word[adb[13:4]];
    else dob <= {{17'd0, word[adb[13:4]][adb[3:0]]}};
  end
endmodule
""".format(loads="\n".join(loads))
    head = (
        "// DP16KD as lgn's ECP5 LUT engine uses it (compiler/ecp5_engine.py); written by lgn, not Lattice's model.\n"
    )
    return head + "module DP16KD (\n" + "\n".join(ports) + "\n);\n" + "\n".join(params + wires) + body


def simulate_engine(
    graph: GateGraph, raw, sim: str = "verilator", netlist: bool = True, build_root=None,
    reference: GateGraph | None = None, mode: str = "back-to-back", progress=None,
):  # fmt: skip
    """The ECP5 engine on ``raw`` feature bytes, every sample fed byte by byte after reset (no program to
    send), against the evaluator for ``reference`` (default: ``graph``): ``netlist``, what ``lgn synth
    --target ecp5 --core engine`` synthesizes (yosys' ECP5 flow, :func:`.netlist_sim.synthesize`) on yosys'
    cell models; else its RTL. Both with :func:`dp16kd_model`. Checks the stated latency too."""
    import numpy as np

    from . import cell_models, evaluate, hdl_sim, netlist_sim
    from .raw_input import U8
    from .verify import Answers

    engine = layout(graph)
    expected = Answers(None, evaluate.predict(reference if reference is not None else graph,
                                              evaluate.encode(graph, raw)))  # fmt: skip
    files = {"lgn_top.v": engine_verilog(graph, engine)}
    if netlist:
        text, cells = netlist_sim.synthesize(files, "lgn_top", "ecp5", progress=progress)
        if cells.get("DP16KD", 0) != engine.block_rams:  # lgn's instances, kept through synth_ecp5
            raise LgnError(f"yosys synth_ecp5 left {cells.get('DP16KD', 0)} DP16KD of {engine.block_rams}: {cells}")
        files = {"lgn_top_netlist.v": text}
    used = "\n".join(files.values())
    names = set(cell_models._WORD.findall(used)) - {"DP16KD"}  # theirs is a blackbox: ours stands in
    library = cell_models.select_modules(cell_models.library_text("ecp5"), names)
    files |= {"lgn_cells_ecp5.v": library, "lgn_dp16kd.v": dp16kd_model()}
    bench = hdl_sim.Bench("lgn_top", True, True, engine.program.latency, graph.n_classes, 1, False, stream=True)
    rows = U8.words(raw).astype(np.uint8)
    return hdl_sim.run_testbench(files, bench, rows, expected, sim, mode, build_root)


def place_and_route(
    graph: GateGraph, device: str, out, seed: int = 1, freq: float | None = None, timeout: float = 1800.0,
    progress=None, router: str = "router2", svf: bool = True,
):  # fmt: skip
    """``lgn synth --target ecp5 --pnr --core engine``: the engine for ``graph`` synthesized (yosys' ECP5
    flow, :func:`.ecp5.synth_commands`), placed and routed by nextpnr-ecp5 on ``device`` with ``router``, packed
    into ``out/lgn_net.bit`` (the program inside). Raises :class:`~.fpga_devices.DoesNotFit` naming the DP16KD
    the engine needs before any tool runs; a :class:`~.fpga.PnrResult` with the engine's cycles per sample."""
    import time
    from pathlib import Path

    from . import ecp5, toolchain
    from .fpga import PnrResult, check_streamable
    from .fpga_devices import ECP5_DEVICES, DoesNotFit
    from .hdl_tools import run_yosys

    spec, out = ECP5_DEVICES[device], Path(out)
    check_streamable(graph)
    try:
        engine = layout(graph, spec.dp16kd, f"{device} ({spec.package})")
    except LgnError as exc:
        raise DoesNotFit(f"the design does not fit the {device} ({spec.package}): {exc}") from None
    nextpnr, ecppack = toolchain.find("nextpnr-ecp5"), toolchain.find("ecppack")
    start, say = time.perf_counter(), progress or (lambda line: None)
    say(f"tools: {toolchain.find('yosys').describe()}; {nextpnr.describe()}; {ecppack.describe()}")
    deadline = start + timeout
    out.mkdir(parents=True, exist_ok=True)
    files = {"lgn_top.v": engine_verilog(graph, engine)}
    commands = ["read_verilog lgn_top.v", *ecp5.synth_commands()]
    trim = "--timeout S gives it longer"
    cells = run_yosys(commands, files, "yosys synth_ecp5 of the LUT engine", deadline, out, trim, say)
    luts, ffs = cells.get("LUT4", 0), cells.get("TRELLIS_FF", 0)
    if luts == 0 or cells.get("DP16KD", 0) != engine.block_rams:
        raise LgnError(f"yosys synth_ecp5 of the LUT engine left {cells}, not {engine.block_rams} DP16KD and LUT4s")
    say(f"synth_ecp5, LUT engine: {luts} LUT4, {ffs} flip-flops, {engine.describe()}")
    (out / "lgn_top.lpf").write_text(ecp5.CLOCK_ONLY_LPF)
    report = ecp5.route(nextpnr.command, device, out, seed, freq, router, deadline, say)
    used = report.get("utilization", {})
    comb = used.get("TRELLIS_COMB", {"used": luts, "available": spec.luts})
    ram = used.get("DP16KD", {"used": engine.block_rams, "available": spec.dp16kd})
    fmax = [v.get("achieved") for v in report.get("fmax", {}).values() if v.get("achieved")]
    say(f"nextpnr-ecp5 ({router}): {comb['used']} of {comb['available']} LUT4 slots, {ram['used']} of "
        f"{ram['available']} DP16KD ({time.perf_counter() - start:.0f} s)")  # fmt: skip
    ecp5.pack(ecppack.command, out, deadline, svf)
    p = engine.program
    return PnrResult(
        device, spec.package, "engine", luts, ffs, int(comb["used"]), int(comb["available"]), int(ram["used"]),
        int(ram["available"]), min(fmax) if fmax else None, p.latency, p.cycles_per_sample, out / "lgn_net.bit",
        time.perf_counter() - start,
    )  # fmt: skip
