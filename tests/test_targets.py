"""Target files: shipped ones load; malformed, incomplete or inconsistent ones fail naming the field."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest

from convforge import ConvProblem
from convforge.backends.accel import compile_accel
from convforge.targets import HERE, TargetError, load, names

SHIPPED = HERE / "gemmini.toml"


def test_shipped_targets_load():
    assert {"gemmini", "vta", "davinci", "davinci_a2"} <= set(names())
    for name in names():
        t = load(name)
        assert t.name == name and t.isa in ("gemmini", "vta", "davinci")
        assert all(b.depth > 0 for b in t.buffers.values())


def test_gemmini_defaults_match_the_reference():
    t = load("gemmini")
    assert t.intrinsic["n"] == 16
    assert t.buffers["spad"].bytes == 256 * 1024 and t.buffers["spad"].depth == 16384
    assert t.buffers["acc"].bytes == 64 * 1024 and t.buffers["acc"].depth == 1024


def test_unknown_target_names_the_choices():
    with pytest.raises(ValueError, match="unknown target 'tpu'.*gemmini"):
        load("tpu")
    with pytest.raises(ValueError, match="does not exist"):
        load("/nonexistent/mine.toml")


def _edited(tmp_path: Path, old: str, new: str) -> Path:
    text = SHIPPED.read_text()
    assert re.search(old, text, flags=re.MULTILINE), old
    path = tmp_path / "mine.toml"
    path.write_text(re.sub(old, new, text, count=1, flags=re.MULTILINE))
    return path


@pytest.mark.parametrize("old, new, field", [
    (r"^bytes = 262144", "", "buffers.spad.bytes"),
    (r"^bytes = 262144", 'bytes = "big"', "buffers.spad.bytes"),
    (r"^bytes = 262144", "bytes = 262145", "buffers.spad.bytes"),
    (r"^unit_bytes = 16", "unit_bytes = 32", "buffers.spad.unit_bytes"),
    (r'^engine = "LD"', 'engine = "DMA"', "paths.dram_to_spad.engine"),
    (r'^dst = "spad"', 'dst = "sram"', "paths.dram_to_spad.dst"),
    (r"^min_pair_rows = 4", "", "timing.min_pair_rows"),
    (r"^loop_bound = 65535", "loop_bound = -1", "limits.loop_bound"),
    (r'^isa = "gemmini"', 'isa = "tpu"', "isa"),
    (r'^activation = "NHWC"', 'activation = "HWIO"', "layouts.activation"),
    (r'^dtypes = .*$', 'dtypes = [["i8", "i8"]]', "dtypes[0]"),
    (r"^m = 16", "m = 8", "intrinsic"),
])
def test_bad_target_file_names_the_field(tmp_path, old, new, field):
    with pytest.raises(TargetError, match=re.escape(field)):
        load(_edited(tmp_path, old, new))


def test_malformed_toml(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("name = 'x'\n[buffers\n")
    with pytest.raises(TargetError, match="malformed TOML"):
        load(path)


def test_users_own_accelerator_from_a_copy(tmp_path):
    """A copied file with a bigger scratchpad and a slower DMA is a different machine."""
    p = ConvProblem(1, 64, 64, 14, 14, 3, 3, padding=1, dtypes=("i8", "i8", "i32", "i32"))
    path = _edited(tmp_path, r"^bytes_per_cycle = 16", "bytes_per_cycle = 2")
    slow = compile_accel(p, "fwd", str(path), algorithm="direct")
    fast = compile_accel(p, "fwd", "gemmini", algorithm="direct")
    assert slow.target == "gemmini" and slow.accelerator.source == str(path)
    assert slow.stats.busy["LD"] > fast.stats.busy["LD"]


def test_unsupported_dtypes_name_the_field():
    p = ConvProblem(1, 4, 4, 5, 5, 3, 3)  # f32 everywhere
    with pytest.raises(ValueError, match=r"problem.dtypes.*gemmini.*dtypes"):
        compile_accel(p, "fwd", "gemmini")
    with pytest.raises(ValueError, match=r"problem.dtypes.*davinci"):
        compile_accel(dataclasses.replace(p, dtypes=("i8", "i8", "i32", "i32")), "fwd", "davinci")


def test_operand_dtype_checked_at_call():
    p = ConvProblem(1, 4, 4, 5, 5, 3, 3, dtypes=("i8", "i8", "i32", "i32"))
    kernel = compile_accel(p, "fwd", "vta", algorithm="direct")
    with pytest.raises(TypeError, match="operand 'x' must have dtype int8"):
        kernel(np.zeros(p.x_shape, np.float32), np.zeros(p.w_shape, np.int8))
    with pytest.raises(ValueError, match="operand 'w' must have shape"):
        kernel(np.zeros(p.x_shape, np.int8), np.zeros((1, 1, 1, 1), np.int8))


def test_unknown_algorithm_and_target_type():
    p = ConvProblem(1, 4, 4, 5, 5, 3, 3, dtypes=("i8", "i8", "i32", "i32"))
    with pytest.raises(ValueError, match="algorithm 'winograd'"):
        compile_accel(p, "fwd", "gemmini", algorithm="winograd")
    with pytest.raises(TypeError, match="target must be"):
        compile_accel(p, "fwd", 42)


def test_a_32x32_gemmini_from_a_copy(tmp_path):
    """The docs/targets.md example: a bigger mesh and buffers compile and run exactly."""
    import sys

    text = SHIPPED.read_text().replace('name = "gemmini"', 'name = "gemmini32"')
    text = re.sub(r"^m = 16\nk = 16\nn = 16\nmacs_per_cycle = 256", "m = 32\nk = 32\nn = 32\nmacs_per_cycle = 1024",
                  text, flags=re.MULTILINE)
    text = text.replace("bytes = 262144\nunit_bytes = 16", "bytes = 524288\nunit_bytes = 32")
    text = text.replace("bytes = 65536\nunit_bytes = 64", "bytes = 131072\nunit_bytes = 128")
    path = tmp_path / "gemmini32.toml"
    path.write_text(text)
    assert load(path).intrinsic["n"] == 32
    sys.path.insert(0, str(Path(__file__).parent))
    from accel_helpers import check_kernel

    p = ConvProblem(2, 40, 36, 7, 6, 3, 2, stride=(2, 1), padding=1, dtypes=("i8", "i8", "i32", "i32"))
    for direction in ("fwd", "bwd_data", "bwd_weight"):
        check_kernel(compile_accel(p, direction, str(path)), p, direction, "gemmini", 5)
