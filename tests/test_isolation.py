"""The compiler never imports torch: it must run wherever numpy does."""

import subprocess
import sys

BLOCK_TORCH = """
import sys
class BlockTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is blocked in this test")
sys.meta_path.insert(0, BlockTorch())
import compiler, compiler.cli, compiler.passes, compiler.lutmap, compiler.blif, compiler.formal
import compiler.c_emit, compiler.c_build, compiler.verilog_emit, compiler.hdl_sim, compiler.hdl_tools
from compiler.random_graph import random_layered
g = compiler.simplify(random_layered(10, 2, 20, classes=2))
assert "torch" not in sys.modules
print("ok", g.n_gates)
"""


def test_compiler_imports_and_runs_without_torch():
    proc = subprocess.run([sys.executable, "-c", BLOCK_TORCH], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ok ")
