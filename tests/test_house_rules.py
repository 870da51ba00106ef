"""House rules that run as tests: sizes that keep the code readable, and a type checker over the package and
the tests. The allow-lists name today's exceptions; an entry that no longer needs its exception fails the
test until it is removed, so the lists only shrink."""

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_FOLDERS = ("compiler", "kernels", "training", "lgn")
# The compiler's core: the IR, its algebra, the oracle, the passes and the formats (not the backends).
CORE = ("ir", "truth", "evaluate", "passes", "pipeline", "lutmap", "formats", "verify", "lowering", "errors", "blif")
CORE_LINES = 2_500
MODULE_LINES = 400
FUNCTION_LINES = 80
LONG_MODULES: dict[str, int] = {}  # path -> its length today
LONG_FUNCTIONS: dict[str, int] = {}  # "path:function" -> its length today


def package_modules() -> list[Path]:
    return sorted(p for folder in PACKAGE_FOLDERS for p in (ROOT / folder).rglob("*.py"))


def lines(path: Path) -> int:
    return len(path.read_text().splitlines())


def test_compiler_core_stays_small():
    total = sum(lines(ROOT / "compiler" / f"{name}.py") for name in CORE)
    assert total <= CORE_LINES, f"the compiler core has {total} lines (at most {CORE_LINES})"


def test_no_module_is_too_long():
    too_long = {str(p.relative_to(ROOT)): n for p in package_modules() if (n := lines(p)) > MODULE_LINES}
    assert too_long.keys() <= LONG_MODULES.keys(), f"modules over {MODULE_LINES} lines: {too_long}"
    stale = LONG_MODULES.keys() - too_long.keys()
    assert not stale, f"remove from LONG_MODULES (now short enough): {sorted(stale)}"


def test_no_function_is_too_long():
    too_long = {}
    for path in package_modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > FUNCTION_LINES:
                    too_long[f"{path.relative_to(ROOT)}:{node.name}"] = length
    assert too_long.keys() <= LONG_FUNCTIONS.keys(), f"functions over {FUNCTION_LINES} lines: {too_long}"
    stale = LONG_FUNCTIONS.keys() - too_long.keys()
    assert not stale, f"remove from LONG_FUNCTIONS (now short enough): {sorted(stale)}"


def test_the_size_rules_can_fail(tmp_path):
    """The measurements see a long function (the rules are not vacuous)."""
    source = "def f():\n" + "    x = 1\n" * (FUNCTION_LINES + 5)
    node = ast.parse(source).body[0]
    assert node.end_lineno - node.lineno + 1 > FUNCTION_LINES


def _layout_tree(where: Path) -> Path:
    """The installed layout (lgn/compiler, lgn/training, ...) as links to the repository's files, for mypy,
    which does not follow setuptools' package-dir mapping of an editable install."""
    top = where / "lgn"
    top.mkdir()
    for entry in (ROOT / "lgn").iterdir():
        if entry.name != "__pycache__":
            (top / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
    for name in ("compiler", "training", "kernels", "templates"):
        (top / name).symlink_to(ROOT / name, target_is_directory=True)
    return where


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("mypy") is None and not (Path(sys.executable).parent / "mypy").exists(),
                    reason="mypy is not installed (pip install 'lgn[dev]')")  # fmt: skip
def test_type_checker_passes_over_the_package_and_the_tests(tmp_path):
    tree = _layout_tree(tmp_path)
    env = dict(os.environ, MYPYPATH=str(tree))
    config = ["--config-file", str(ROOT / "pyproject.toml"), "--cache-dir", str(tmp_path / ".mypy_cache")]
    command = [sys.executable, "-m", "mypy", *config, "lgn", str(ROOT / "tests"), str(ROOT / "hdl_tests")]
    proc = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
