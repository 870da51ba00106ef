"""lgn.ceiling: the probes build and run on every ISA this machine runs, the cache sizes come from sysfs, and a
model is compared with the level its values fit in. (Rates are measured, never asserted: timing decides no test.)"""

import math

import pytest

from lgn import ceiling
from lgn.compiler import c_build


@pytest.mark.parametrize("isa", c_build.host_isas())
def test_every_probe_runs_and_gives_a_rate(isa, tmp_path, monkeypatch):
    monkeypatch.setattr(ceiling, "TARGET_SECONDS", 0.002)
    c = ceiling.measure(isa, tmp_path)
    assert c.lanes == {"portable": 64, "avx2": 256, "avx512": 512}[isa]
    for value in (c.clock_hz, c.registers, c.l1, c.l2):
        assert math.isfinite(value) and value > 0


def _cache(root, index, level, kind, size):
    folder = root / f"index{index}"
    folder.mkdir(parents=True)
    (folder / "level").write_text(f"{level}\n")
    (folder / "type").write_text(f"{kind}\n")
    (folder / "size").write_text(f"{size}\n")


def test_cache_sizes_read_sysfs(tmp_path):
    _cache(tmp_path, 0, 1, "Data", "48K")
    _cache(tmp_path, 1, 1, "Instruction", "32K")
    _cache(tmp_path, 2, 2, "Unified", "2048K")
    _cache(tmp_path, 3, 3, "Unified", "32M")
    assert ceiling.cache_sizes(tmp_path) == (48 * 1024, 2048 * 1024)


def test_cache_sizes_fall_back_where_sysfs_is_missing_or_odd(tmp_path):
    assert ceiling.cache_sizes(tmp_path / "absent") == ceiling.DEFAULT_CACHES
    _cache(tmp_path, 0, 1, "Data", "lots")
    assert ceiling.cache_sizes(tmp_path) == ceiling.DEFAULT_CACHES


def test_a_model_is_compared_with_the_level_its_values_fit_in():
    c = ceiling.Ceiling("avx2", 256, 3e9, 1e12, 3e11, 1e11, 32 * 1024, 1024 * 1024)
    assert c.matching(32 * 1024) == ("L1", 3e11)
    assert c.matching(32 * 1024 + 1) == ("L2", 1e11)
    assert c.matching(10**9) == ("L2", 1e11)
