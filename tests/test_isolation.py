"""The layers of the one namespace: the compiler imports nothing of ours and never torch, the packages import
each other in one direction only, and only the application layer (``lgn`` itself) uses both the compiler
and training."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Where each installed package's modules live in the repository (pyproject's package-dir).
PACKAGES = {name: ROOT / name for name in ("compiler", "kernels", "training")} | {"app": ROOT / "lgn"}
# Who may import whom (besides itself): lgn -> training -> (kernels, compiler), kernels -> compiler.
ALLOWED = {
    "compiler": set(),
    "kernels": {"compiler"},
    "training": {"compiler", "kernels"},
    "app": {"compiler", "kernels", "training"},
}


def _package_of(module: str) -> str | None:
    """``lgn.compiler.ir`` -> ``compiler``; ``lgn.cli`` -> ``app``; anything outside lgn -> None."""
    parts = module.split(".")
    if parts[0] != "lgn":
        return None
    if len(parts) > 1 and parts[1] in ("compiler", "kernels", "training", "templates"):
        return parts[1] if parts[1] != "templates" else None
    return "app"


def _module_name(package: str, path: Path) -> str:
    base = "lgn" if package == "app" else f"lgn.{package}"
    rel = path.relative_to(PACKAGES[package]).with_suffix("")
    parts = [p for p in rel.parts if p != "__init__"]
    return ".".join([base, *parts])


def _imports(package: str, path: Path) -> set[str]:
    """Every module ``path`` imports, relative imports resolved, at any depth of the file (lazy ones too)."""
    name = _module_name(package, path)
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = name.split(".")
                anchor = anchor if is_package else anchor[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            if base != "lgn":  # "from lgn import kernels" names the subpackage, not the application layer
                found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def _edges() -> dict[str, dict[str, set[str]]]:
    """package -> module -> the other packages of ours it imports."""
    edges: dict[str, dict[str, set[str]]] = {}
    for package, folder in PACKAGES.items():
        files = folder.glob("*.py") if package != "app" else folder.rglob("*.py")
        for path in sorted(files):
            targets = {_package_of(m) for m in _imports(package, path)} - {None, package}
            edges.setdefault(package, {})[_module_name(package, path)] = targets  # type: ignore[assignment]
    return edges


def test_packages_import_in_one_direction_only():
    for package, modules in _edges().items():
        for module, targets in modules.items():
            assert targets <= ALLOWED[package], f"{module} imports {sorted(targets - ALLOWED[package])}"


def test_only_the_application_layer_uses_both_compiler_and_training():
    for package, modules in _edges().items():
        for module, targets in modules.items():
            if package in ("compiler", "kernels"):
                assert not {"compiler", "training"} <= targets | {package}, module
    # and the rule is not vacuous: the application layer does use both
    assert any({"compiler", "training"} <= t for t in _edges()["app"].values())


def test_the_import_walk_sees_lazy_and_relative_imports():
    edges = _edges()
    assert "compiler" in edges["kernels"]["lgn.kernels.host"]  # a plain absolute import
    assert "training" in edges["app"]["lgn.cli.verify"]  # imports inside functions count
    assert edges["compiler"]["lgn.compiler.c_build"] == set()  # relative imports stay inside


BLOCKED = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "torch" or name.startswith(("lgn.training", "lgn.kernels")):
            raise ImportError(f"{name} is blocked in this test")
sys.meta_path.insert(0, Block())
import pkgutil, importlib, lgn.compiler
for info in pkgutil.iter_modules(lgn.compiler.__path__):
    if info.name != "testbench":  # imported by the simulator, needs cocotb
        importlib.import_module(f"lgn.compiler.{info.name}")
from lgn.compiler.random_graph import random_layered
g = lgn.compiler.simplify(random_layered(10, 2, 20, classes=2))
assert not any(m.split(".")[0] == "torch" for m in sys.modules)
print("ok", g.n_gates)
"""


def test_compiler_imports_and_runs_without_torch_training_or_kernels():
    proc = subprocess.run([sys.executable, "-c", BLOCKED], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ok ")


def test_the_command_line_starts_without_torch():
    """Parsing any command's options (train's included) never loads torch: the compiler commands run without it."""
    code = "import sys; from lgn.cli import build_parser; build_parser(); assert 'torch' not in sys.modules"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
