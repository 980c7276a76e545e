"""`convforge.compile` for target "host": layouts, out=, configs from the spaces, and input checking."""

from __future__ import annotations

import numpy as np
import pytest

import convforge as cf
from convforge.backends.c.configs import fwd_space, gemm_space, spatial_space, wgrad_space
from convforge.backends.c.lower import lowered_stages
from convforge.backends.c.toolchain import vector_width
from convforge.plan import ConvCore

P = cf.ConvProblem(3, 5, 6, 9, 10, 3, 2, stride=(2, 1), padding=(1, 2, 0, 1), dilation=(1, 2))


pytestmark = pytest.mark.usefixtures("private_kernel_cache")


def operands(p, direction, seed=0):
    rng = np.random.default_rng(seed)
    return [o.astype(np.float32) for o in cf.reference.random_operands(p, direction, rng)]


def rel_err(out, ref):
    return float(np.abs(out - ref).max() / np.abs(ref).max())


@pytest.mark.parametrize("layout", ["NHWC", "NCHW16c", "NCHW8c"])
@pytest.mark.parametrize("direction", ["fwd", "bwd_data", "bwd_weight"])
def test_caller_layouts(layout, direction):
    kernel = cf.compile(P, direction, layout=layout)
    ops = operands(P, direction)
    roles = {"fwd": ("x", "w"), "bwd_data": ("y", "w"), "bwd_weight": ("x", "y")}[direction]
    logical = {"x": P.x_shape, "y": P.y_shape}
    physical = [cf.layouts.pack(o, layout) if role != "w" else o for o, role in zip(ops, roles)]
    result = kernel(*[np.ascontiguousarray(a, dtype=np.float32) for a in physical])
    ref = cf.reference.compute(P, direction, *[o.astype(np.float64) for o in ops])
    if direction != "bwd_weight":
        out_role = "y" if direction == "fwd" else "x"
        result = cf.layouts.unpack(result, layout, logical[out_role])
    assert rel_err(result, ref) < 1e-4


def test_kernel_attributes_and_new_output():
    kernel = cf.compile(P, "bwd_data", algorithm="phase_split")
    assert isinstance(kernel, cf.Kernel)
    assert kernel.macs == P.useful_macs and kernel.problem == P
    assert kernel.direction is cf.Direction.bwd_data
    assert kernel.config["algorithm"] == "phase_split" and kernel.config["stages"]
    assert "heuristic" in kernel.provenance
    assert "void cf_conv_" in kernel.source and "cf_copy_0" in kernel.source
    dy, w = operands(P, "bwd_data")
    a = kernel(dy, w)
    b = kernel(dy, w)
    assert a is not b and a.shape == P.x_shape and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)


def test_tuning_measures_and_remembers(monkeypatch, tmp_path):
    monkeypatch.setenv("CONVFORGE_CACHE", str(tmp_path))
    p = cf.ConvProblem(1, 4, 5, 7, 6, 3, 3, stride=2, padding=1)
    first = cf.compile(p, "bwd_data", tune=4)
    assert first.provenance.startswith("measured: best of") and (tmp_path / "tuned.json").exists()
    again = cf.compile(p, "bwd_data", tune=4)
    assert "cached" in again.provenance and again.config == first.config
    dy, w = operands(p, "bwd_data")
    assert rel_err(again(dy, w), cf.reference.bwd_data(p, dy.astype(np.float64), w.astype(np.float64))) < 1e-4
    assert "heuristic" in cf.compile(p, "bwd_data", algorithm="trim").provenance


def test_stale_tuning_record_is_ignored(monkeypatch, tmp_path):
    monkeypatch.setenv("CONVFORGE_CACHE", str(tmp_path))
    from convforge.backends.c import measure
    key = measure.record_key(P, cf.Direction.fwd, "NCHW") + "|auto"
    measure.remember(key, {"config": {"algorithm": "trim", "stages": [{"core": "fwd", "rows": 3}]},
                           "candidates": 2, "requested": 2})
    kernel = cf.compile(P, "fwd")
    assert "heuristic" in kernel.provenance


def test_auto_avoids_inserted_zeros_for_strided_bwd_data():
    assert cf.compile(P, "bwd_data").config["algorithm"] == "phase_split"


def stage_configs(space, count):
    return space.sample(count, seed=3)


@pytest.mark.parametrize("config", stage_configs(fwd_space(vector_width()), 4) +
                         stage_configs(wgrad_space(vector_width()), 4), ids=str)
@pytest.mark.parametrize("direction", ["fwd", "bwd_weight"])
def test_any_core_config_is_correct(direction, config):
    """Both cores with any register block compute any conv core: the space is safe to search."""
    kernel = cf.compile(P, direction, config={"algorithm": "direct", "stages": [config]})
    assert kernel.config["stages"] == [config]
    ops = operands(P, direction, seed=5)
    ref = cf.reference.compute(P, direction, *[o.astype(np.float64) for o in ops])
    assert rel_err(kernel(*ops), ref) < 1e-4


@pytest.mark.parametrize("config", stage_configs(spatial_space(vector_width()), 4), ids=str)
@pytest.mark.parametrize("direction", ["fwd", "bwd_data"])
def test_spatial_core_configs(direction, config):
    """Vectors along output rows: valid wherever the core's column stride is 1."""
    kernel = cf.compile(P, direction, config={"algorithm": "direct", "stages": [config]})
    ops = operands(P, direction, seed=7)
    ref = cf.reference.compute(P, direction, *[o.astype(np.float64) for o in ops])
    assert rel_err(kernel(*ops), ref) < 1e-4


@pytest.mark.parametrize("direction", ["fwd", "bwd_data"])
def test_pointwise_core_uses_caller_buffers(direction):
    """A 1x1 core over whole vector rows reads and writes NCHW in place: no pack, no unpack."""
    p = cf.ConvProblem(3, 20, 8, 4, 8, 1, 1)
    config = {"core": "spatial", "style": "vector_ext", "qv": 2, "kb": 4}
    kernel = cf.compile(p, direction, config={"algorithm": "trim", "stages": [config]})
    assert set(kernel.program.scratch) == {"s0_w"}
    ops = operands(p, direction, seed=8)
    ref = cf.reference.compute(p, direction, *[o.astype(np.float64) for o in ops])
    assert rel_err(kernel(*ops), ref) < 1e-4


@pytest.mark.parametrize("groups", [1, 2])
def test_fwd_core_packs_only_real_channels(groups):
    """Fewer input channels per group than vector lanes (an RGB stem): the packed input holds only
    those channels per pixel, not a zero-padded vector."""
    p = cf.ConvProblem(2, 3 * groups, 4 * groups, 9, 11, 3, 3, stride=(2, 2), padding=(1, 0, 2, 1), groups=groups)
    config = {"core": "fwd", "style": "vector_ext", "qb": 2, "kb": 1, "order": "nkp"}
    kernel = cf.compile(p, "fwd", config={"algorithm": "direct", "stages": [config]})
    hp, wp = (p.p - 1) * 2 + 3, (-(-p.q // 2) * 2 - 1) * 2 + 3  # padded rows x columns the core reads
    assert kernel.program.scratch["s0_x"] == p.n * groups * hp * wp * 3
    ops = operands(p, "fwd", seed=9)
    ref = cf.reference.compute(p, "fwd", *[o.astype(np.float64) for o in ops])
    assert rel_err(kernel(*ops, out=np.full(p.y_shape, np.nan, np.float32)), ref) < 1e-4


IN_PLACE = [  # (problem, direction, qb, x packed, y packed): the fwd core reads x / writes y in NCHW in place
    (cf.ConvProblem(3, 37, 20, 5, 14, 1, 1), "fwd", 14, False, False),  # K tail, pointwise rows flattened
    (cf.ConvProblem(2, 34, 40, 9, 47, 1, 1, stride=(2, 2), groups=2), "fwd", 12, False, False),  # strided, groups
    (cf.ConvProblem(1, 18, 17, 8, 16, 3, 3, dilation=(1, 2)), "fwd", 12, False, False),  # valid 3x3: no padding
    (cf.ConvProblem(1, 18, 17, 8, 16, 3, 3, dilation=(1, 2)), "fwd", 14, True, False),  # Q % qb: x packed, y tail
    (cf.ConvProblem(2, 16, 33, 6, 6, 3, 3, padding=1), "fwd", 12, True, False),  # padded: x packed, y in place
    (cf.ConvProblem(2, 40, 24, 6, 6, 1, 1), "bwd_data", 12, False, False),  # transposed weights, dY in place
    (cf.ConvProblem(2, 40, 24, 7, 7, 1, 1), "fwd", 7, True, True),  # narrow tiles: both packed
]


@pytest.mark.parametrize("order", ["nkp", "knp", "npk"])
@pytest.mark.parametrize("p,direction,qb,packed_x,packed_y", IN_PLACE, ids=str)
def test_fwd_core_reads_and_writes_nchw_in_place(p, direction, qb, packed_x, packed_y, order):
    stage = {"core": "fwd", "style": "vector_ext", "qb": qb, "kb": 2, "order": order}
    kernel = cf.compile(p, direction, config={"algorithm": "trim", "stages": [stage]})
    assert ("s0_x" in kernel.program.scratch) == packed_x and ("s0_y" in kernel.program.scratch) == packed_y
    ops = operands(p, direction, seed=4)
    ref = cf.reference.compute(p, direction, *[o.astype(np.float64) for o in ops])
    assert rel_err(kernel(*ops, out=np.full(kernel.out_shape, np.nan, np.float32)), ref) < 1e-4


WGRAD_IN_PLACE = [  # (problem, nb, qb): dW's activations read through their strides, no pack
    (cf.ConvProblem(3, 24, 20, 6, 9, 1, 1), 8, 1),  # pointwise, K tail
    (cf.ConvProblem(2, 36, 34, 9, 11, 1, 1), 4, 1),  # pointwise, odd sizes
    (cf.ConvProblem(2, 12, 16, 7, 8, 3, 2, dilation=(2, 1)), 4, 2),  # valid RxS: Q = 2 taps of 2
]


@pytest.mark.parametrize("p,nb,qb", WGRAD_IN_PLACE, ids=str)
def test_wgrad_core_reads_activations_in_place(p, nb, qb):
    stage = {"core": "wgrad", "style": "vector_ext", "nb": nb, "qb": qb, "kb": 1}
    kernel = cf.compile(p, "bwd_weight", config={"algorithm": "direct", "stages": [stage]})
    assert "s0_x" not in kernel.program.scratch
    ops = operands(p, "bwd_weight", seed=5)
    ref = cf.reference.bwd_weight(p, *[o.astype(np.float64) for o in ops])
    assert rel_err(kernel(*ops, out=np.full(kernel.out_shape, np.nan, np.float32)), ref) < 1e-4


SWAPPED = [  # 1x1 weight gradients with C < K: the X window is packed, dY read in place
    cf.ConvProblem(3, 16, 40, 7, 9, 1, 1),
    cf.ConvProblem(2, 32, 48, 9, 8, 1, 1, stride=(2, 3), padding=(1, 0, 2, 1)),  # strided, padded
    cf.ConvProblem(5, 64, 96, 5, 6, 1, 1, stride=2, groups=2, dilation=3),  # groups: dY's group rows are packed too
]


@pytest.mark.parametrize("p", SWAPPED, ids=str)
def test_pointwise_weight_gradient_packs_the_smaller_side(p):
    kernel = cf.compile(p, "bwd_weight", algorithm="direct")
    core = next(s for s in lowered_stages(kernel.plan) if isinstance(s, ConvCore))
    assert (core.x.buffer, core.w.buffer) == ("y", "x")  # dY is the core's image, X its filter
    assert ("s0_x" in kernel.program.scratch) == (p.groups > 1)
    ops = operands(p, "bwd_weight", seed=7)
    ref = cf.reference.bwd_weight(p, *[o.astype(np.float64) for o in ops])
    assert rel_err(kernel(*ops, out=np.full(kernel.out_shape, np.nan, np.float32)), ref) < 1e-4


def test_pointwise_weight_gradient_keeps_roles_when_dy_is_smaller():
    kernel = cf.compile(cf.ConvProblem(2, 48, 16, 6, 6, 1, 1), "bwd_weight", algorithm="direct")
    core = next(s for s in lowered_stages(kernel.plan) if isinstance(s, ConvCore))
    assert (core.x.buffer, core.w.buffer) == ("x", "y")


@pytest.mark.parametrize("p", [P, SWAPPED[1], cf.ConvProblem(2, 24, 20, 8, 9, 3, 3, padding=1)], ids=str)
def test_wgrad_reduction_in_chunks(p, monkeypatch):
    """Chunks of one reduction row: every partial sum goes through the output between chunks."""
    monkeypatch.setattr(cf.backends.c.configs, "L2_BYTES", 64)
    kernel = cf.compile(p, "bwd_weight", config={"algorithm": "direct", "stages": [
        {"core": "wgrad", "style": "vector_ext", "nb": 2, "qb": 1, "kb": 1}]})
    call = next(c for c in kernel.program.calls if c.symbol == "cf_conv_wgrad")
    assert call.params[16] == 1  # one (c, r) row per chunk
    ops = operands(p, "bwd_weight", seed=9)
    ref = cf.reference.bwd_weight(p, *[o.astype(np.float64) for o in ops])
    assert rel_err(kernel(*ops, out=np.full(kernel.out_shape, np.nan, np.float32)), ref) < 1e-4


@pytest.mark.parametrize("layout", ["NCHW", "NHWC", "NCHW16c"])
@pytest.mark.parametrize("direction,algorithm", [("fwd", "trim"), ("bwd_data", "phase_split"),
                                                 ("bwd_data", "fwd_reuse")])
def test_batch_slices(direction, algorithm, layout, monkeypatch):
    """A batch whose activations overflow the cache budget runs slice by slice."""
    p = cf.ConvProblem(6, 3, 5, 11, 13, 3, 3, stride=2, padding=(1, 0, 2, 1))
    monkeypatch.setattr(cf.backends.c.configs, "SLICE_BYTES", 4 * p.c * p.h * p.w * 8)
    kernel = cf.compile(p, direction, algorithm=algorithm, layout=layout)
    assert kernel.slices > 1 and kernel.plan.problem.n * kernel.slices == p.n
    assert kernel.stats["useful_macs"] == p.useful_macs
    ops = operands(p, direction, seed=10)
    ref = cf.reference.compute(p, direction, *[o.astype(np.float64) for o in ops])
    packed = [cf.layouts.pack(o, layout) if i == 0 else o for i, o in enumerate(ops)]
    out = np.full(kernel.out_shape, np.nan, np.float32)
    got = kernel(*[np.ascontiguousarray(a, dtype=np.float32) for a in packed], out=out)
    assert rel_err(cf.layouts.unpack(got, layout, ref.shape), ref) < 1e-4


@pytest.mark.parametrize("layout", ["NCHW", "NHWC", "NCHW16c"])
@pytest.mark.parametrize("p,algorithm", [
    (cf.ConvProblem(6, 3, 20, 11, 13, 3, 3, stride=2, padding=(1, 0, 2, 1)), "trim"),
    (cf.ConvProblem(4, 6, 8, 9, 7, 3, 2, padding=1, dilation=(2, 1), groups=2), "direct"),
    (SWAPPED[1], "trim"),  # image and filter swapped: the X window is the core's filter
    (cf.ConvProblem(4, 16, 32, 9, 8, 1, 1, stride=2), "phase_split")], ids=str)
def test_weight_gradient_slices_add_up(p, algorithm, layout, monkeypatch):
    """A sliced weight gradient: partial sums of every slice meet in the core's output, which is
    cleared once before the first slice and written to dW once after the last."""
    monkeypatch.setattr(cf.backends.c.configs, "SLICE_BYTES", 64)
    monkeypatch.setattr(cf.backends.c.configs, "WGRAD_SLICE_PACKS", 0)
    kernel = cf.compile(p, "bwd_weight", algorithm=algorithm, layout=layout)
    assert kernel.slices == p.n and kernel.program.slice_sums
    assert {c.when for c in kernel.program.calls} == {"before", "slice", "after"}
    ops = operands(p, "bwd_weight", seed=11)
    ref = cf.reference.bwd_weight(p, *[o.astype(np.float64) for o in ops])
    packed = [np.ascontiguousarray(cf.layouts.pack(o, layout), dtype=np.float32) for o in ops]
    for _ in range(2):  # the second call must not see the first call's sums
        got = kernel(*packed, out=np.full(kernel.out_shape, np.nan, np.float32))
        assert rel_err(got, ref) < 1e-4


@pytest.mark.parametrize("algorithm", ["im2col_gemm", "fwd_reuse"])
def test_weight_gradients_without_wgrad_cores_are_not_sliced(algorithm, monkeypatch):
    monkeypatch.setattr(cf.backends.c.configs, "SLICE_BYTES", 64)
    monkeypatch.setattr(cf.backends.c.configs, "WGRAD_SLICE_PACKS", 0)
    assert cf.compile(P, "bwd_weight", algorithm=algorithm).slices == 1


@pytest.mark.parametrize("p", [cf.ConvProblem(2, 6, 20, 9, 11, 1, 1, stride=(2, 3), padding=(0, 1, 1, 0)),
                               cf.ConvProblem(1, 5, 7, 8, 7, 1, 3, stride=(2, 2), padding=(0, 0, 1, 1))], ids=str)
def test_fwd_reuse_skips_output_lines_of_inserted_zeros(p):
    """A 1-tap axis over zero-inserted dY: only the output lines that read real dY are computed."""
    kernel = cf.compile(p, "bwd_data", algorithm="fwd_reuse")
    core = next(s for s in lowered_stages(kernel.plan) if isinstance(s, ConvCore))
    rows, cols = -(-p.h // p.stride[0]), p.w if p.s > 1 else -(-p.w // p.stride[1])  # lines reading real dY
    assert core.geometry.p * core.geometry.q <= rows * cols and core.geometry.input_dilation == (1, 1)
    ops = operands(p, "bwd_data", seed=8)
    ref = cf.reference.bwd_data(p, *[o.astype(np.float64) for o in ops])
    assert rel_err(kernel(*ops, out=np.full(kernel.out_shape, np.nan, np.float32)), ref) < 1e-4


def test_spatial_core_needs_unit_column_stride():
    with pytest.raises(ValueError, match="core .spatial. does not apply"):
        spatial = {"core": "spatial", "style": "vector_ext", "qv": 1, "kb": 1}
        cf.compile(P, "bwd_weight", config={"algorithm": "direct", "stages": [spatial]})


@pytest.mark.parametrize("config", stage_configs(gemm_space(), 3), ids=str)
def test_gemm_configs(config):
    kernel = cf.compile(P, "fwd", config={"algorithm": "im2col_gemm", "stages": [{}, config]})
    ops = operands(P, "fwd", seed=6)
    assert rel_err(kernel(*ops), cf.reference.fwd(P, *[o.astype(np.float64) for o in ops])) < 1e-4


def test_spaces_declare_their_knobs():
    space = fwd_space(16)
    assert {k.name for k in space.knobs} == {"core", "style", "qb", "kb", "order"}
    assert len(space) > 16 and all(c["qb"] * c["kb"] + c["kb"] <= 31 for c in space)
    assert "qb in [" in space.describe() and len(space.sample(5)) == 5
    with pytest.raises(ValueError, match="not in space"):
        space.check({"core": "fwd", "style": "vector_ext", "qb": 28, "kb": 4, "order": "nkp"})


# ---------------------------------------------------------------------- input checking
@pytest.fixture(scope="module")
def kernel():
    return cf.compile(P, "fwd")


def test_wrong_operand_shape(kernel):
    x, w = operands(P, "fwd")
    with pytest.raises(ValueError, match="shape"):
        kernel(x[:, :4], w)


def test_wrong_dtype(kernel):
    x, w = operands(P, "fwd")
    with pytest.raises(TypeError, match="float32"):
        kernel(x.astype(np.float64), w)
    with pytest.raises(TypeError, match="numpy.ndarray"):
        kernel(x.tolist(), w)


def test_non_contiguous(kernel):
    x, w = operands(P, "fwd")
    xt = np.asfortranarray(x)
    with pytest.raises(ValueError, match="C-contiguous"):
        kernel(xt, w)


def test_bad_out(kernel):
    x, w = operands(P, "fwd")
    with pytest.raises(ValueError, match="out must have shape"):
        kernel(x, w, out=np.empty((1, 2), np.float32))
    with pytest.raises(TypeError, match="out must have dtype"):
        kernel(x, w, out=np.empty(P.y_shape, np.float64))
    ro = np.empty(P.y_shape, np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        kernel(x, w, out=ro)


@pytest.mark.parametrize("kwargs,error,match", [
    ({"target": "gpu"}, ValueError, "target"),
    ({"layout": "NCWH"}, ValueError, "layout"),
    ({"layout": 3}, TypeError, "layout"),
    ({"algorithm": "winograd"}, ValueError, "algorithm"),
    ({"algorithm": "phase_split", "direction": "fwd"}, ValueError, "algorithm"),
    ({"direction": "sideways"}, ValueError, "direction"),
    ({"config": {"algorithm": "trim",
                 "stages": [{"core": "fwd", "style": "vector_ext", "qb": 99, "kb": 1, "order": "nkp"}]}},
     ValueError, "not in space"),
    ({"config": {"algorithm": "trim", "stages": [{"core": "fft"}]}}, ValueError, "does not apply"),
    ({"config": {"algorithm": "trim", "stages": [None, None]}}, ValueError, "stage entries"),
    ({"config": {"stages": [None]}}, ValueError, "explicit algorithm"),
    ({"tune": 33}, ValueError, "tune"),
    ({"tune": True}, ValueError, "tune"),
    ({"config": {"tiles": 3}}, ValueError, "unknown keys"),
    ({"config": "fast"}, TypeError, "config"),
])
def test_bad_compile_arguments(kwargs, error, match):
    kwargs = dict(kwargs)
    direction = kwargs.pop("direction", "fwd")
    with pytest.raises(error, match=match):
        cf.compile(P, direction, **kwargs)


def test_bad_problem_and_dtypes():
    with pytest.raises(TypeError, match="ConvProblem"):
        cf.compile("mb1ic3", "fwd")
    half = cf.ConvProblem(1, 3, 4, 5, 5, 3, 3, dtypes=("f16", "f16", "f32", "f16"))
    with pytest.raises(ValueError, match="float32"):
        cf.compile(half, "fwd")


def test_compile_dispatches_to_the_simulated_accelerators():
    p = cf.ConvProblem(1, 5, 7, 6, 6, 3, 3, stride=2, padding=1, dtypes=("i8", "i8", "i32", "i32"))
    rng = np.random.default_rng(0)
    dy = rng.integers(-8, 8, p.y_shape, dtype=np.int8)
    w = rng.integers(-8, 8, p.w_shape, dtype=np.int8)
    kernel = cf.compile(p, "bwd_data", target="gemmini", algorithm="phase_split")
    got = kernel(dy, w)
    assert np.array_equal(got, cf.reference.bwd_data(p, dy, w).astype(np.int64))
    assert kernel.stats.cycles > 0 and "phase_split" in kernel.provenance + str(kernel.config)
    with pytest.raises(ValueError, match="unknown target 'tpu'"):
        cf.compile(p, "fwd", target="tpu")
    with pytest.raises(ValueError, match="layout must be 'NCHW' for accelerator"):
        cf.compile(p, "fwd", target="vta", layout="NHWC")


@pytest.mark.parametrize("layout", ["NCHW", "NHWC", "NCHW16c"])
@pytest.mark.parametrize("p", [cf.ConvProblem(3, 20, 18, 11, 13, 3, 3, stride=2, padding=(1, 0, 2, 1)),
                               cf.ConvProblem(2, 8, 12, 10, 9, 5, 4, stride=(3, 2), dilation=(2, 1), groups=2)],
                         ids=str)
def test_stride_phases_share_filter_pack_and_output(p, layout):
    """Over a batch, the phases of bwd_data read their taps of one filter pack and write their
    pixels into one blocked output, written to the caller in one pass after the last phase."""
    kernel = cf.compile(p, "bwd_data", algorithm="phase_split", layout=layout)
    calls = kernel.program.calls
    cores = [c for c in calls if c.symbol == "cf_conv_fwd"]
    assert len(cores) == p.stride[0] * p.stride[1]
    assert len({c.buffers[1] for c in cores}) == 1 and len({c.buffers[2] for c in cores}) == 1
    writes = [c.buffers for c in calls if c.buffers[0] == "x" and c.buffers[1] != "x"]  # (clears: x from x)
    assert writes == [("x", cores[0].buffers[2])] and calls[-1].buffers == writes[0]
    ops = operands(p, "bwd_data", seed=12)
    ref = cf.reference.bwd_data(p, *[o.astype(np.float64) for o in ops])
    dy = np.ascontiguousarray(cf.layouts.pack(ops[0], layout), dtype=np.float32)
    got = kernel(dy, ops[1], out=np.full(kernel.out_shape, np.nan, np.float32))
    assert rel_err(cf.layouts.unpack(got, layout, ref.shape), ref) < 1e-4
