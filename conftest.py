import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("default", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile(
    "ci", max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
# More examples when hunting bugs: LGN_HYPOTHESIS_PROFILE=stress pytest tests/test_passes.py
settings.register_profile("stress", max_examples=2000, deadline=None, suppress_health_check=list(HealthCheck))
settings.load_profile(os.environ.get("LGN_HYPOTHESIS_PROFILE", "default"))


def pytest_addoption(parser):
    parser.addoption("--run-slow", action="store_true", help="also run tests marked slow")
    parser.addoption("--run-hdl", action="store_true", help="also run tests marked hdl (simulators, yosys, ABC)")
    parser.addoption("--update-golden", action="store_true", help="rewrite the golden files from the current emitters")


def pytest_configure(config):
    if os.environ.get("CI") and "LGN_HYPOTHESIS_PROFILE" not in os.environ:
        settings.load_profile("ci")


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def pytest_collection_modifyitems(config, items):
    """Default ``pytest`` is fast: tests marked slow or hdl run only when asked for (the README's test command
    asks for both); cuda tests are skipped without a GPU."""
    skips = {
        "slow": None if config.getoption("--run-slow") else pytest.mark.skip(reason="slow: run with --run-slow"),
        "hdl": None if config.getoption("--run-hdl") else pytest.mark.skip(reason="hdl: run with --run-hdl"),
    }
    if any("cuda" in item.keywords for item in items) and not _cuda_available():
        skips["cuda"] = pytest.mark.skip(reason="no CUDA GPU here: the CUDA kernels cannot run on this machine")
    for item in items:
        for marker, skip in skips.items():
            if skip is not None and marker in item.keywords:
                item.add_marker(skip)


GOLDEN = Path(__file__).parent / "tests" / "golden"


def check_golden(name: str, text: str, update: bool = False) -> None:
    """``text`` must equal the golden file ``tests/golden/NAME``; with ``update`` the file is rewritten first."""
    path = GOLDEN / name
    if update:
        path.write_text(text)
    assert path.exists(), f"{path} is missing: run pytest --update-golden once, and review the new file"
    assert text == path.read_text(), f"{path} differs (regenerate with --update-golden only for an intended change)"


@pytest.fixture
def golden(request):
    """``golden(name, text)``: :func:`check_golden`, rewriting the file under ``pytest --update-golden``."""
    update = request.config.getoption("--update-golden")
    return lambda name, text: check_golden(name, text, update)
