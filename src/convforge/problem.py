"""The convolution problem: one general 2-D convolution and its three directions.

`ConvProblem` is the forward convolution (cross-correlation, NCHW / KCRS) with stride, asymmetric
padding, dilation and groups. Backward-data and backward-weight are *directions* of the same
problem, so one shape serves all three (as benchdnn's `--dir` does). A transposed convolution is the
backward-data direction of its forward problem; a dilated convolution is a forward problem with
dilation > 1.
"""

from __future__ import annotations

import enum
import math
import re
from dataclasses import dataclass, field, replace

import numpy as np

DTYPE_BYTES = {"f16": 2, "bf16": 2, "f32": 4, "f64": 8, "i8": 1, "i32": 4}
"""Element types a problem may name, with their sizes."""


class Direction(enum.StrEnum):
    """Which tensor a kernel computes: the output, the input gradient or the weight gradient."""

    fwd = "fwd"
    bwd_data = "bwd_data"
    bwd_weight = "bwd_weight"

    @classmethod
    def of(cls, value: Direction | str) -> Direction:
        if isinstance(value, Direction):
            return value
        try:
            return cls(value)
        except ValueError:
            raise ValueError(
                f"direction must be one of {[d.value for d in cls]}, got {value!r}") from None


def _int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _pair(name: str, value, minimum: int) -> tuple[int, int]:
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} must be an int or a pair (h, w), got {value!r}")
        return (_int(f"{name}[0]", value[0], minimum), _int(f"{name}[1]", value[1], minimum))
    v = _int(name, value, minimum)
    return (v, v)


def _padding(value) -> tuple[int, int, int, int]:
    """Accept p, (ph, pw) or (top, bottom, left, right)."""
    if isinstance(value, (tuple, list)):
        if len(value) == 2:
            ph, pw = _pair("padding", value, 0)
            return (ph, ph, pw, pw)
        if len(value) == 4:
            return tuple(_int(f"padding[{i}]", v, 0) for i, v in enumerate(value))  # type: ignore
        raise ValueError(f"padding must be an int, (ph, pw) or (top, bottom, left, right), got {value!r}")
    p = _int("padding", value, 0)
    return (p, p, p, p)


def _dtype(name: str, value: str) -> str:
    if value not in DTYPE_BYTES:
        raise ValueError(f"{name} must be one of {sorted(DTYPE_BYTES)}, got {value!r}")
    return value


class OperandShapes:
    """Logical operand shapes of anything with n, c, k, h, w, r, s, p, q and groups."""

    @property
    def x_shape(self) -> tuple[int, int, int, int]:
        return (self.n, self.c, self.h, self.w)

    @property
    def w_shape(self) -> tuple[int, int, int, int]:
        return (self.k, self.c // self.groups, self.r, self.s)

    @property
    def y_shape(self) -> tuple[int, int, int, int]:
        return (self.n, self.k, self.p, self.q)


@dataclass(frozen=True)
class ConvProblem(OperandShapes):
    """Forward conv Y[n,k,p,q] = sum_{c,r,s} Xpad[n, g*C/G + c, p*sh + r*dh, q*sw + s*dw] W[k,c,r,s].

    Activations are logically N,C,H,W; weights K, C/groups, R, S (as PyTorch). Padding is
    (top, bottom, left, right). dtypes are (input, weight, accumulator, output).
    """

    n: int
    c: int
    k: int
    h: int
    w: int
    r: int
    s: int
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    dtypes: tuple[str, str, str, str] = ("f32", "f32", "f32", "f32")
    name: str = field(default="", compare=False)

    def __post_init__(self):
        for f in ("n", "c", "k", "h", "w", "r", "s"):
            object.__setattr__(self, f, _int(f, getattr(self, f), 1))
        object.__setattr__(self, "stride", _pair("stride", self.stride, 1))
        object.__setattr__(self, "dilation", _pair("dilation", self.dilation, 1))
        object.__setattr__(self, "padding", _padding(self.padding))
        object.__setattr__(self, "groups", _int("groups", self.groups, 1))
        if not isinstance(self.name, str):
            raise TypeError(f"name must be a str, got {type(self.name).__name__}")
        if isinstance(self.dtypes, str) or len(self.dtypes) != 4:
            raise ValueError(f"dtypes must be (input, weight, accumulator, output), got {self.dtypes!r}")
        object.__setattr__(self, "dtypes", tuple(
            _dtype(f"dtypes[{role}]", v)
            for role, v in zip(("input", "weight", "accumulator", "output"), self.dtypes)))
        if self.c % self.groups:
            raise ValueError(f"c={self.c} (input channels) must be divisible by groups={self.groups}")
        if self.k % self.groups:
            raise ValueError(f"k={self.k} (output channels) must be divisible by groups={self.groups}")
        pt, pb, pl, pr = self.padding
        if self.kernel_extent[0] > self.h + pt + pb:
            raise ValueError(
                f"r={self.r} with dilation {self.dilation[0]} spans {self.kernel_extent[0]} rows, "
                f"more than the padded input height h+pad_top+pad_bottom={self.h + pt + pb}")
        if self.kernel_extent[1] > self.w + pl + pr:
            raise ValueError(
                f"s={self.s} with dilation {self.dilation[1]} spans {self.kernel_extent[1]} columns, "
                f"more than the padded input width w+pad_left+pad_right={self.w + pl + pr}")

    # ---------------------------------------------------------------- derived sizes
    @property
    def kernel_extent(self) -> tuple[int, int]:
        """Rows and columns one dilated filter window spans."""
        return ((self.r - 1) * self.dilation[0] + 1, (self.s - 1) * self.dilation[1] + 1)

    @property
    def p(self) -> int:
        """Output height."""
        pt, pb, _, _ = self.padding
        return (self.h + pt + pb - self.kernel_extent[0]) // self.stride[0] + 1

    @property
    def q(self) -> int:
        """Output width."""
        _, _, pl, pr = self.padding
        return (self.w + pl + pr - self.kernel_extent[1]) // self.stride[1] + 1

    @property
    def macs(self) -> int:
        """Multiply-adds of the definition, padded taps included (the FLOP convention: 2*macs)."""
        return self.n * self.k * (self.c // self.groups) * self.r * self.s * self.p * self.q

    @property
    def flops(self) -> int:
        return 2 * self.macs

    @property
    def useful_macs(self) -> int:
        """Multiply-adds whose input element is not padding: the same count in every direction."""
        rows = _valid_taps(self.p, self.r, self.stride[0], self.dilation[0], self.padding[0], self.h)
        cols = _valid_taps(self.q, self.s, self.stride[1], self.dilation[1], self.padding[2], self.w)
        return self.n * self.k * (self.c // self.groups) * rows * cols

    def operand_shapes(self, direction: Direction | str) -> tuple[tuple[tuple[int, ...], ...], tuple[int, ...]]:
        """(input shapes, output shape) in the operand order of `convforge.reference`."""
        d = Direction.of(direction)
        if d is Direction.fwd:
            return (self.x_shape, self.w_shape), self.y_shape
        if d is Direction.bwd_data:
            return (self.y_shape, self.w_shape), self.x_shape
        return (self.x_shape, self.y_shape), self.w_shape

    def min_bytes(self, direction: Direction | str = Direction.fwd) -> int:
        """Compulsory traffic: each operand read once and the result written once."""
        ins, out = self.operand_shapes(direction)
        dt_in, dt_w, _, dt_out = self.dtypes
        d = Direction.of(direction)
        in_bytes = {Direction.fwd: (dt_in, dt_w), Direction.bwd_data: (dt_out, dt_w),
                    Direction.bwd_weight: (dt_in, dt_out)}[d]
        out_bytes = {Direction.fwd: dt_out, Direction.bwd_data: dt_in, Direction.bwd_weight: dt_w}[d]
        total = sum(math.prod(s) * DTYPE_BYTES[t] for s, t in zip(ins, in_bytes))
        return total + math.prod(out) * DTYPE_BYTES[out_bytes]

    def with_batch(self, n: int) -> ConvProblem:
        return replace(self, n=n)

    # ---------------------------------------------------------------- constructors
    @classmethod
    def transposed(cls, n: int, in_channels: int, out_channels: int, h: int, w: int,
                   kernel_size, stride=1, padding=0, output_padding=0, dilation=1, groups: int = 1,
                   name: str = "") -> ConvProblem:
        """The forward problem whose bwd_data is PyTorch's ConvTranspose2d.

        The transposed conv maps [n, in_channels, h, w] to [n, out_channels, H, W] with
        H = (h-1)*stride - 2*padding + dilation*(R-1) + output_padding + 1. Its forward problem has
        C = out_channels, K = in_channels, input H x W, top pad = padding and bottom pad
        max(padding - output_padding, 0): any bottom pad in [padding - output_padding,
        padding - output_padding + stride) gives forward output h, so this is the smallest legal one.
        """
        r, s = _pair("kernel_size", kernel_size, 1)
        sh, sw = _pair("stride", stride, 1)
        ph, pw = _pair("padding", padding, 0)
        oph, opw = _pair("output_padding", output_padding, 0)
        dh, dw = _pair("dilation", dilation, 1)
        if oph >= max(sh, dh) or opw >= max(sw, dw):
            raise ValueError(f"output_padding={output_padding} must be smaller than stride or dilation")
        _int("in_channels", in_channels, 1)
        _int("out_channels", out_channels, 1)
        big_h = (_int("h", h, 1) - 1) * sh - 2 * ph + dh * (r - 1) + oph + 1
        big_w = (_int("w", w, 1) - 1) * sw - 2 * pw + dw * (s - 1) + opw + 1
        if big_h < 1 or big_w < 1:
            raise ValueError(f"padding={padding} leaves an empty transposed-conv output ({big_h}x{big_w})")
        problem = cls(n, out_channels, in_channels, big_h, big_w, r, s, (sh, sw),
                      (ph, max(ph - oph, 0), pw, max(pw - opw, 0)), (dh, dw), groups, name=name)
        assert (problem.p, problem.q) == (h, w)
        return problem

    @classmethod
    def dilated(cls, n: int, c: int, k: int, h: int, w: int, r: int, s: int, dilation,
                padding=0, stride=1, groups: int = 1, name: str = "") -> ConvProblem:
        """A dilated (atrous) forward convolution."""
        return cls(n, c, k, h, w, r, s, stride, padding, dilation, groups, name=name)

    # ---------------------------------------------------------------- descriptors
    def __str__(self) -> str:
        sh, sw = self.stride
        pt, pb, pl, pr = self.padding
        dh, dw = self.dilation
        text = (f"n{self.n}c{self.c}h{self.h}w{self.w}k{self.k}r{self.r}s{self.s}"
                f"_sh{sh}sw{sw}_pt{pt}pb{pb}pl{pl}pr{pr}_dh{dh}dw{dw}_g{self.groups}")
        if self.dtypes != ("f32",) * 4:
            text += "_dt" + ":".join(self.dtypes)
        if self.name:
            text += f'_"{self.name}"'
        return text

    @classmethod
    def parse(cls, text: str) -> ConvProblem:
        """Parse our descriptor (what `str` prints) or a oneDNN benchdnn conv descriptor."""
        if not isinstance(text, str):
            raise TypeError(f"descriptor must be a str, got {type(text).__name__}")
        body, name = _split_name(text.strip())
        if re.search(r"(mb|ic|oc|ih|kh)\d", body):
            return _parse_benchdnn(body, name)
        return _parse_native(body, name)


def _valid_taps(out: int, taps: int, stride: int, dilation: int, pad_front: int, size: int) -> int:
    """Number of (output index, tap) pairs along one axis whose input index lies inside [0, size)."""
    total = 0
    for t in range(taps):
        # input index o*stride + t*dilation - pad_front in [0, size)
        lo = -(-(pad_front - t * dilation) // stride)
        hi = (size - 1 + pad_front - t * dilation) // stride
        total += max(0, min(hi, out - 1) - max(lo, 0) + 1)
    return total


def _split_name(text: str) -> tuple[str, str]:
    m = re.search(r'_?n?"([^"]*)"$', text)
    if not m:
        return text, ""
    return text[:m.start()], m.group(1)


_NATIVE_KEYS = ("n", "c", "h", "w", "k", "r", "s", "sh", "sw", "pt", "pb", "pl", "pr", "dh", "dw", "g")


def _tokens(body: str, keys: tuple[str, ...], what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    pos = 0
    alternatives = "|".join(sorted(keys, key=len, reverse=True))
    pattern = re.compile(rf"_*({alternatives})(\d+)")
    while pos < len(body):
        if body.startswith("dt", pos) or body.startswith("_dt", pos):
            m = re.compile(r"_?dt([a-z0-9]+(?::[a-z0-9]+){3})").match(body, pos)
            if not m:
                raise ValueError(f"malformed dtypes in {what} descriptor {body!r} at {body[pos:]!r}")
            out["dt"] = m.group(1)
            pos = m.end()
            continue
        m = pattern.match(body, pos)
        if not m or m.end() == pos:
            rest = body[pos:].lstrip("_")
            if not rest:
                break
            raise ValueError(f"malformed {what} descriptor {body!r}: cannot read {rest!r} "
                             f"(known fields: {', '.join(keys)})")
        if m.group(1) in out:
            raise ValueError(f"field {m.group(1)!r} given twice in {what} descriptor {body!r}")
        out[m.group(1)] = m.group(2)
        pos = m.end()
    return out


def _parse_native(body: str, name: str) -> ConvProblem:
    t = _tokens(body, _NATIVE_KEYS, "convforge")
    for required in ("n", "c", "h", "k", "r"):
        if required not in t:
            raise ValueError(f"descriptor {body!r} lacks the required field {required!r}")
    get = lambda key, default: int(t[key]) if key in t else default  # noqa: E731
    h, r = get("h", 0), get("r", 0)
    dtypes = tuple(t["dt"].split(":")) if "dt" in t else ("f32",) * 4
    return ConvProblem(
        get("n", 0), get("c", 0), get("k", 0), h, get("w", h), r, get("s", r),
        (get("sh", 1), get("sw", get("sh", 1))),
        (get("pt", 0), get("pb", get("pt", 0)), get("pl", get("pt", 0)), get("pr", get("pl", get("pt", 0)))),
        (get("dh", 1), get("dw", get("dh", 1))), get("g", 1), dtypes, name)


_BENCHDNN_KEYS = ("g", "mb", "ic", "id", "ih", "iw", "oc", "od", "oh", "ow", "kd", "kh", "kw",
                  "sd", "sh", "sw", "pd", "ph", "pw", "dd", "dh", "dw")


def _parse_benchdnn(body: str, name: str) -> ConvProblem:
    """benchdnn conv syntax: missing w values copy h, g=1, mb=2, s=1, d=0 (ours = benchdnn + 1);
    a missing pad is deduced from the output size, and the bottom/right pad is implied by it."""
    raw = _tokens(body, _BENCHDNN_KEYS, "benchdnn")
    if "dt" in raw:
        raise ValueError(f"benchdnn descriptor {body!r} cannot carry dt; set dtypes on the problem")
    t = {key: int(value) for key, value in raw.items()}
    for key in ("ic", "ih", "oc", "kh"):
        if key not in t:
            raise ValueError(f"benchdnn descriptor {body!r} lacks the required field {key!r}")
    if any(key in t for key in ("id", "od", "kd", "sd", "pd", "dd")):
        raise ValueError(f"benchdnn descriptor {body!r} is 3-D; ConvForge handles 2-D convolutions")
    square = "iw" not in t  # only a fully square problem copies the output size too
    for w_key, h_key in (("iw", "ih"), ("kw", "kh"), ("sw", "sh"), ("pw", "ph"), ("dw", "dh")) + \
            ((("ow", "oh"),) if square else ()):
        if w_key not in t and h_key in t:
            t[w_key] = t[h_key]

    def axis(a: str) -> tuple[int, int, int, int, int, int]:
        size, kern, stride, dil = t["i" + a], t["k" + a], t.get("s" + a, 1), t.get("d" + a, 0) + 1
        extent = (kern - 1) * dil + 1
        if "o" + a in t and "p" + a not in t:
            front = max(((t["o" + a] - 1) * stride - size + extent) // 2, 0)
        else:
            front = t.get("p" + a, 0)
        out = t.get("o" + a, (size + 2 * front - extent) // stride + 1)
        back = (out - 1) * stride - size + extent - front
        if back < 0:  # the last input rows are never read; pad 0 gives the same output
            if -back >= stride:
                raise ValueError(f"benchdnn descriptor {body!r}: o{a}={out} leaves {-back} input rows "
                                 f"unread, more than the stride {stride}")
            back = 0
        return size, kern, stride, front, back, dil

    h, w = axis("h"), axis("w")
    return ConvProblem(t.get("mb", 2), t["ic"], t["oc"], h[0], w[0], h[1], w[1], (h[2], w[2]),
                       (h[3], h[4], w[3], w[4]), (h[5], w[5]), t.get("g", 1), name=name)
