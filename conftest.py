import os

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
    run_slow = config.getoption("--run-slow")
    skip_slow = pytest.mark.skip(reason="slow: run with --run-slow")
    skip_cuda = None
    if any("cuda" in item.keywords for item in items) and not _cuda_available():
        skip_cuda = pytest.mark.skip(reason="no CUDA GPU here: the CUDA kernels cannot run on this machine")
    for item in items:
        if "slow" in item.keywords and not run_slow:
            item.add_marker(skip_slow)
        if "cuda" in item.keywords and skip_cuda is not None:
            item.add_marker(skip_cuda)
