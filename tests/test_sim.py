"""The simulator: illegal programs are errors naming the instruction; counters are consistent;
timing-only mode gives the same counters as a functional run."""

from __future__ import annotations

import numpy as np
import pytest
from accel_helpers import operands, typed

from convforge import ConvProblem
from convforge.backends.accel import compile_accel
from convforge.layouts import IndexMap
from convforge.sim.davinci import Load3d
from convforge.sim.dma import Box, view_strides
from convforge.sim.gemmini import LoopConvEx, a_units
from convforge.sim.machine import Machine, Region, SimError
from convforge.sim.ops import Load
from convforge.sim.tile import TileShape
from convforge.sim.vta import Gemm, pack_uops, unpack_uops
from convforge.targets import load


def _box(tensor: str, shape, elem_bytes: int = 1) -> Box:
    view = IndexMap.identity(shape, tensor)
    return Box(tensor, view, (0,) * len(shape), tuple(shape), elem_bytes, view_strides(view))


def _mvin(region: Region, shape=(1, 16, 2, 2)) -> Load:
    return Load("mvin", "LD", "dram_to_spad", region, _box("x", shape), lambda f: a_units(f, 16))


def _run(target: str, program, dram=None, explicit_sync=False):
    dram = dram if dram is not None else {"x": np.ones((1, 16, 2, 2), np.int8)}
    return Machine(load(target), dram, functional=True, explicit_sync=explicit_sync).run(program)


def test_buffer_overflow_is_named():
    with pytest.raises(SimError, match=r"instruction #0 mvin.*overflows buffer spad"):
        _run("gemmini", [_mvin(Region("spad", 16382, 4))])


def test_alignment_is_named():
    shape = TileShape(1, 4, 4, 16, 16, 1, 1, (1, 1), (1, 1), ((0, 0),))
    ins = Load3d(Region("L1", 0, 16), Region("L0A", 3, 16), shape)
    with pytest.raises(SimError, match=r"#0 load3d.*breaks alignment.*multiple of 16 units"):
        _run("davinci", [ins])


def test_read_of_unwritten_data_is_named():
    shape = TileShape(1, 2, 2, 16, 16, 1, 1, (1, 1), (1, 1), ((0, 0),))
    conv = LoopConvEx(Region("spad", 0, 4), Region("spad", 100, 16), Region("acc", 0, 4), shape, False)
    with pytest.raises(SimError, match=r"instruction #1 loop_conv_ex.*reads spad\[100:116\].*never written"):
        _run("gemmini", [_mvin(Region("spad", 0, 4)), conv])


def test_isa_limits_are_named():
    big = TileShape(1, 1, 70000, 16, 16, 1, 1, (1, 1), (1, 1), ((0, 0),))
    conv = LoopConvEx(Region("spad", 0, 1), Region("spad", 1, 16), Region("acc", 0, 1), big, False)
    with pytest.raises(SimError, match="out_cols=70000 exceeds the ISA limit loop_bound=65535"):
        Machine(load("gemmini"), None, functional=False).run([_mvin(Region("spad", 0, 1), (1, 16, 1, 1)),
                                                              _mvin(Region("spad", 1, 16), (1, 16, 4, 4)), conv])
    strided = TileShape(1, 2, 2, 16, 16, 1, 1, (64, 1), (1, 1), ((0, 0),))
    with pytest.raises(SimError, match="field stride=64 exceeds the load3d limit 63"):
        Machine(load("davinci"), None, functional=False).run(
            [Load("copy_gm_to_cbuf", "MTE2", "gm_to_l1", Region("L1", 0, 100), _box("x", (1, 16, 10, 10), 2),
                  lambda f: f), Load3d(Region("L1", 0, 100), Region("L0A", 0, 16), strided)])
    gemm = Gemm(0, 1, 1 << 14, 1, (0, 0), (0, 0), (0, 0), Region("acc", 0, 1), Region("inp", 0, 1),
                Region("wgt", 0, 1), 0)
    with pytest.raises(SimError, match="iter_out=16384 does not fit its 14-bit ISA field"):
        Machine(load("vta"), None, functional=False).run([_fill("uop", 1), _fill("inp", 1), _fill("wgt", 1),
                                                          _fill("acc", 1), gemm])


def _fill(buffer: str, n: int):
    from convforge.sim.ops import Fill

    return Fill("GEMM.reset", "COMPUTE", Region(buffer, 0, n), 1.0)


def test_vta_race_and_deadlock():
    x = {"x": np.ones((1, 16, 1, 1), np.int8)}
    load_inp = Load("LOAD.inp", "LOAD", "dram_to_inp", Region("inp", 0, 1), _box("x", (1, 16, 1, 1)),
                    lambda f: f.reshape(-1, 16))
    gemm = Gemm(0, 1, 1, 1, (0, 0), (0, 0), (0, 0), Region("acc", 0, 1), Region("inp", 0, 1), Region("wgt", 0, 1), 0)
    prologue = [_fill("uop", 1), _fill("wgt", 1), _fill("acc", 1)]
    with pytest.raises(SimError, match=r"#4 GEMM.*races"):
        _run("vta", prologue + [load_inp, gemm], x, explicit_sync=True)
    gemm.pops = ("l2g",)
    with pytest.raises(SimError, match=r"pops dependency token 'l2g'.*deadlock"):
        _run("vta", prologue + [load_inp, gemm], x, explicit_sync=True)
    load_inp.pushes = ("l2g",)
    _run("vta", prologue + [load_inp, gemm], x, explicit_sync=True)


def test_uop_words_round_trip():
    dst, src, wgt = np.array([0, 2047, 5]), np.array([2047, 0, 7]), np.array([1023, 1, 0])
    assert all(np.array_equal(a, b) for a, b in zip(unpack_uops(pack_uops(dst, src, wgt)), (dst, src, wgt)))


@pytest.mark.parametrize("target", ["gemmini", "vta", "davinci"])
@pytest.mark.parametrize("direction", ["fwd", "bwd_data", "bwd_weight"])
def test_timing_only_matches_functional(target, direction):
    p = typed(ConvProblem(2, 19, 21, 9, 8, 3, 2, stride=(2, 1), padding=(1, 0, 1, 1)), target)
    kernel = compile_accel(p, direction, target, algorithm="phase_split" if direction != "fwd" else "direct")
    timing = kernel.simulate(timing_only=True).as_dict()
    kernel(*operands(p, direction, target, 3))
    functional = kernel.stats.as_dict()
    assert timing == functional
    assert functional["executed_macs"] >= p.useful_macs
    assert functional["dram_bytes"] >= p.min_bytes(direction) * 0.5
    assert functional["cycles"] >= max(functional["busy"].values())
    assert all(v <= load(target).buffers[b].bytes for b, v in functional["peak_bytes"].items())


def test_counters_of_one_load():
    stats = _run("gemmini", [_mvin(Region("spad", 0, 4))])
    assert stats.bytes["dram->spad"] == 64 and stats.instructions == 1 and stats.peak_bytes["spad"] == 64


def test_padding_costs_no_dram_bytes():
    """A box hanging over the tensor edge is zero-filled on chip and moves only the valid part."""
    view = IndexMap.identity((1, 16, 2, 2), "x")
    box = Box("x", view, (0, 0, -1, -1), (1, 16, 3, 3), 1, view_strides(view))
    ins = Load("mvin", "LD", "dram_to_spad", Region("spad", 0, 9), box, lambda f: a_units(f, 16))
    m = Machine(load("gemmini"), {"x": np.arange(64, dtype=np.int8).reshape(1, 16, 2, 2)})
    stats = m.run([ins])
    assert stats.bytes["dram->spad"] == 64
    rows = m.buffers["spad"].data[:9]
    assert not rows[0].any() and np.array_equal(rows[4], np.arange(64).reshape(16, 4)[:, 0])
