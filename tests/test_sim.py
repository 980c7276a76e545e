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


def _vta_gemm_reference(uops, iters, factors, inp, wgt, acc):
    """The ISA's micro-op loop, one micro-op at a time (reference/targets.md §3.2)."""
    acc = acc.astype(np.int64)
    dst0, src0, wgt0 = unpack_uops(uops)
    for y in range(iters[0]):
        for x in range(iters[1]):
            for d, s, w in zip(dst0, src0, wgt0):
                d = d + y * factors[0][0] + x * factors[0][1]
                s = s + y * factors[1][0] + x * factors[1][1]
                w = w + y * factors[2][0] + x * factors[2][1]
                acc[d] += wgt[w].reshape(16, 16).astype(np.int64) @ inp[s].astype(np.int64)
    return acc.astype(np.int32)  # two's-complement wrap-around


@pytest.mark.parametrize("form", ["taps", "rows", "repeated_dst", "padded_lanes", "shared_weights"])
def test_vta_gemm_loop_matches_micro_op_semantics(form):
    """Every GEMM loop form the backend emits equals the micro-op loop run one micro-op at a time."""
    rng = np.random.default_rng(1)
    inp = rng.integers(-128, 128, (64, 16)).astype(np.int8)
    if form == "padded_lanes":
        inp[:, 3:] = 0  # channel padding: zero lanes
    wgt = rng.integers(-128, 128, (32, 256)).astype(np.int8)
    acc = rng.integers(-2**31, 2**31, (64, 16)).astype(np.int32)  # wrap-around is exercised
    uops, iters, factors = {
        "taps": (pack_uops([0, 1, 2, 3], [0, 1, 8, 9], [0, 0, 16, 16]), (2, 3), ((0, 0), (8, 1), (3, 1))),
        "rows": (pack_uops([0, 1, 2], [0, 1, 2], [5, 5, 5]), (3, 2), ((4, 0), (8, 1), (0, 1))),
        "repeated_dst": (pack_uops([0, 0, 5], [0, 9, 2], [1, 2, 3]), (2, 2), ((1, 1), (3, 2), (4, 1))),
        "padded_lanes": (pack_uops([0, 1, 2, 3], [0, 1, 8, 9], [0, 0, 16, 16]), (2, 3), ((0, 0), (8, 1), (3, 1))),
        # 32 micro-ops, 16 per weight entry: one batched product per (loop step, entry)
        "shared_weights": (pack_uops(np.arange(32), np.arange(32), np.repeat([0, 5], 16)), (2, 3),
                           ((0, 0), (16, 1), (3, 1))),
    }[form]
    target = load("vta")
    m = Machine(target, {"uops": uops}, functional=True, explicit_sync=False)
    for name, data in (("inp", inp), ("wgt", wgt), ("acc", acc)):
        m.buffers[name].data[:len(data)] = data
        m.buffers[name].written[:len(data)] = True
    m.buffers["uop"].data[:uops.size, 0] = uops
    m.buffers["uop"].written[:uops.size] = True
    gemm = Gemm(0, uops.size, *iters, *factors, Region("acc", 0, 64), Region("inp", 0, 64), Region("wgt", 0, 32), 0)
    m.run([gemm])
    assert np.array_equal(m.buffers["acc"].data[:64], _vta_gemm_reference(uops, iters, factors, inp, wgt, acc))


def test_vta_gemm_loop_leaving_its_region_is_named():
    m = Machine(load("vta"), {"x": np.zeros(1)}, functional=True)
    for name in ("uop", "inp", "wgt", "acc"):
        m.buffers[name].written[:] = True
    m.buffers["uop"].data[0, 0] = pack_uops([0], [3], [0])[0]
    gemm = Gemm(0, 1, 2, 1, (0, 0), (1, 0), (0, 0), Region("acc", 0, 1), Region("inp", 0, 4), Region("wgt", 0, 1), 0)
    with pytest.raises(SimError, match=r"#0 GEMM.*micro-op src index 4 leaves its declared region inp\[0:4\]"):
        m.run([gemm])


def test_davinci_cube_step_over_blocks_and_some_taps():
    """A cube step over two channel blocks and three of the nine taps: load3d + load2d + mmad equal the
    conv of those taps (fp16 products, fp32 sums)."""
    from convforge.backends.accel.emit_davinci import fmap_units, fractal_z_units
    from convforge.sim.davinci import Load2d, Mmad, l0a_units, l0b_units, l0c_units
    from convforge.sim.tile import conv_tile

    rng = np.random.default_rng(2)
    tb, tc, tk, tp, tq, stride, dil = 2, 20, 18, 3, 4, (2, 1), (1, 2)
    taps = ((0, 1), (1, 2), (2, 0))
    shape = TileShape(tb, tp, tq, tk, tc, 3, 3, stride, dil, taps)
    x = rng.standard_normal((tb, tc, shape.rows, shape.cols)).astype(np.float16)
    w = rng.standard_normal((tk, tc, 3, 3)).astype(np.float16)
    xu, wu = fmap_units(x), fractal_z_units(w)
    m = Machine(load("davinci"), {"x": np.zeros(1)}, functional=True)
    m.buffers["L1"].data[:len(xu)] = xu
    m.buffers["L1"].data[len(xu):len(xu) + len(wu)] = wu
    m.buffers["L1"].written[:len(xu) + len(wu)] = True
    a = Region("L0A", 0, l0a_units(shape))
    b = Region("L0B", 0, l0b_units(shape))
    c = Region("L0C", 0, l0c_units(shape))
    m.run([Load3d(Region("L1", 0, len(xu)), a, shape), Load2d(Region("L1", len(xu), len(wu)), b, shape),
           Mmad(a, b, c, shape, accumulate=False)])
    want = conv_tile(shape, x.transpose(0, 2, 3, 1), w.transpose(2, 3, 1, 0))  # [tb, tp, tq, tk]
    got = m.units(c).reshape(-1, tb * tp * tq + 8, 16)[:, :tb * tp * tq].transpose(1, 0, 2).reshape(tb * tp * tq, -1)
    assert np.allclose(got[:, :tk], want.reshape(-1, tk), rtol=1e-5, atol=1e-4)


def test_give_up_after_stops_a_losing_candidate():
    program = [_mvin(Region("spad", 0, 4)), _mvin(Region("spad", 4, 4))]
    def timing():
        return Machine(load("gemmini"), None, functional=False)

    full = timing().run(program)
    assert timing().run(program, give_up_after=full.cycles - 1) is None
    assert timing().run(program, give_up_after=full.cycles).cycles == full.cycles
