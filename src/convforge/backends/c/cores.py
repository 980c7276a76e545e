"""C sources of the compute cores: runtime shapes, compile-time register blocks.

Every core reads operands already packed into a blocked layout (channel blocks of V lanes, spatial
zero padding materialized, block tails zero), so its inner loops never test bounds. Shapes, strides
and dilations arrive at run time in a `long` array; only the register block (and unit stride) is
baked in, so one compiled core serves every problem with the same configuration.

- `fwd`   y[n][kb][p][q][V] += x[n][cb][p*sh+r*dh][q*sw+s*dw][c] * w[kb][cb][c][r][s][V]: the
          oneDNN-style direct conv, an output register block of QB columns x KB channel blocks,
          broadcast-FMA over input channels, OpenMP over (n, group, k-block group, output row).
          Packed x holds XL channel lanes per pixel: V, or the channel count when it is smaller
          (an RGB stem packs 3 lanes, not 16 of which 13 are zeros). Unpadded inputs are read in
          place from NCHW (broadcasts from one plane per channel) and wide tiles are written to
          NCHW through an in-register 16x16 transpose. The task order (knob `order`) decides which
          operand stays in L2 across consecutive tasks. Over a batch, the stride phases of a
          gradient read their taps of one shared filter pack and write their pixels into one
          shared blocked output, both through runtime strides.
- `wgrad` the weight-gradient shape of the same conv (big filter = the batch's dY, tiny output):
          vectors over K, a register block of NB core-batch rows x QB output taps x KB k-blocks,
          the reduction over (c, r, s) in L2-sized chunks (partial sums wait in the output).
          Unpadded activations with dense rows are read in place through the view's strides.
Cores are written with GCC vector extensions (any ISA) or, with the `style` knob, AVX-512
intrinsics. Measured on the development machine (1 thread, ResNet-50 28x28x128 3x3, N=8): fwd
216.8 vs 215.3-218.7 GFLOP/s, wgrad 204.3 vs 203.0: GCC emits the same broadcast-FMA code, so
vector extensions are the default.
All parallel loops use a dynamic schedule: on a shared machine a thread that loses its core for a
time slice would otherwise stall the whole team at the next barrier.
- `gemm`  C[g][m][n] = A[g][m][k] B[g][k][n] with an MR x NR-vector register block.
"""

from __future__ import annotations

from dataclasses import dataclass

from .emit import MINMAX, TILE_HELPERS

VECTOR_HEADER = """#include <stddef.h>
#include <string.h>
#define V {v}
typedef float vf __attribute__((vector_size(V * 4)));
static inline vf vld(const float* p) {{ vf x; memcpy(&x, p, sizeof x); return x; }}
static inline void vst(float* p, vf x) {{ memcpy(p, &x, sizeof x); }}
#define FMA(acc, vec, scalar) ((acc) += (vec) * (scalar))
"""

INTRINSICS_HEADER = """#include <stddef.h>
#include <string.h>
#include <immintrin.h>
#define V 16
typedef __m512 vf;
#define vld _mm512_loadu_ps
#define vst _mm512_storeu_ps
#define FMA(acc, vec, scalar) ((acc) = _mm512_fmadd_ps((vec), _mm512_set1_ps(scalar), (acc)))
"""

STYLES = ("vector_ext", "intrinsics")


def header(v: int, style: str) -> str:
    """GCC vector extensions (any ISA) or explicit AVX-512 intrinsics (16 lanes only)."""
    if style == "intrinsics":
        if v != 16:
            raise ValueError("style 'intrinsics' is written for AVX-512 (16 fp32 lanes)")
        return INTRINSICS_HEADER
    return VECTOR_HEADER.format(v=v)


def task_indices(order: str, extents: dict[str, str]) -> str:
    """C that splits the flat task index `t` into one index per loop, `order` outer to inner."""
    names = {"n": "ng", "k": "kg", "p": "pq"}
    lines, divisor = [], ""
    for axis in reversed(order):
        lines.append(f"    const long {names[axis]} = (t{divisor}) % ({extents[axis]});")
        divisor += f" / ({extents[axis]})"
    return "\n".join(lines)


@dataclass(frozen=True)
class FwdCore:
    v: int
    qb: int
    kb: int
    unit_stride: bool  # sw == 1 baked in: the broadcasts become constant offsets
    style: str = "vector_ext"
    x_lanes: int = 0  # channel lanes per packed input pixel; 0: V
    order: str = "nkp"  # task loop order, outer to inner, over (n = image and group, k = k-block group, p = row)
    x_nchw: int = 0  # > 0: read the caller's NCHW input in place, this many columns between output columns
    y_nchw: bool = False  # write the caller's NCHW output in place (register tiles transposed on the way)
    w_taps: bool = False  # read w through the runtime strides g[17..23] (a stride phase's taps of a shared pack)
    y_strided: bool = False  # write blocked y through the runtime strides g[24..28] (a stride phase's pixels)

    symbol = "cf_conv_fwd"

    def source(self) -> str:
        qb, kb = self.qb, self.kb
        if self.x_nchw:  # channel lanes are whole planes apart; columns are sw elements apart
            col, lane, row_base, tap = str(self.x_nchw), "Hp * Wp", "(cb * V * Hp + row) * Wp", "s * dw"
            image, column = "Cg * Hp * Wp", str(self.x_nchw)
        else:
            col, lane, tap = "XL" if self.unit_stride else "swv", "1", "s * dw * XL"
            row_base = "(cb * Hp + row) * Wp * XL"
            image, column = "Cgb * Hp * Wp * XL", "sw * XL"
        acc = [f"a{j}_{i}" for j in range(kb) for i in range(qb)]
        lines = [header(self.v, self.style), f"#define XL {self.x_lanes or self.v}"]
        if self.y_nchw:
            lines.append(MINMAX + TILE_HELPERS)
        lines.append("static inline void tile(const float* restrict x, const float* restrict w, "
                     "float* restrict y, const long* g, const unsigned char* rowmask, long p, long qvalid, "
                     "long kvalid) {")
        lines.append("  const long Cgb = g[2], Hp = g[4], Wp = g[5], R = g[6], S = g[7], Qp = g[9], sh = g[10], "
                     "sw = g[11], dh = g[12], dw = g[13], Cg = g[14], P = g[8], Q = g[16];")
        lines.append("  const long swv = sw * XL; (void)swv; (void)qvalid; (void)kvalid; (void)Q; (void)Qp;")
        if self.w_taps:
            lines.append("  const long wks = g[18], wcb = g[19], wcv = g[20], t0 = g[21], tr = g[22], ts = g[23];")
        else:  # the packed filter's own taps: constant steps the compiler folds
            lines.append("  const long wks = Cgb * R * S * V * V, wcb = V * R * S * V, wcv = R * S * V, t0 = 0, "
                         "tr = S * V, ts = V;")
        lines.append(f"  vf {', '.join(acc)};")
        lines.append("  " + " ".join(f"{a} = (vf){{0}};" for a in acc))
        lines.append("  for (long cb = 0; cb < Cgb; cb++) {")
        lines.append("    const long cvn = (Cg - cb * V) < V ? (Cg - cb * V) : V;")
        lines.append("    for (long r = 0; r < R; r++) {")
        lines.append("      const long row = p * sh + r * dh;")
        lines.append("      if (!rowmask[row]) continue;")
        lines.append(f"      const float* xr = x + {row_base};")
        lines.append("      const float* wr = w + cb * wcb + t0 + r * tr;")
        lines.append("      for (long s = 0; s < S; s++) {")
        lines.append(f"        const float* xs = xr + {tap};")
        lines.append("        const float* ws = wr + s * ts;")
        lines.append("        for (long cv = 0; cv < cvn; cv++) {")
        lines.append(f"          const float* xc = xs + cv * {lane};")
        if self.x_nchw:  # one stream per channel plane is more than the prefetcher follows: fetch the next tile
            lines.append(f"          __builtin_prefetch(xc + {qb} * {col} + {qb} * {col} - 1);")
        for j in range(kb):
            lines.append(f"          const vf w{j} = vld(ws + {j} * wks + cv * wcv);")
        for i in range(qb):
            lines.append(f"          {{ const float xv = xc[{i} * {col}];")
            for j in range(kb):
                lines.append(f"            FMA(a{j}_{i}, w{j}, xv);")
            lines.append("          }")
        lines.append("        }\n      }\n    }\n  }")
        for j in range(kb):
            if self.y_nchw:  # lanes are output channels: transpose the block into qb-long rows
                lines.append(f"  {{ float buf[{qb} * V] __attribute__((aligned(64)));")
                lines.extend(f"    vst(buf + {i} * V, a{j}_{i});" for i in range(qb))
                lines.append(f"    const long lanes = kvalid - {j} * V;")
                lines.append("    if (lanes > 0)")
                lines.append(f"      for (long c0 = 0; c0 < {qb} && c0 < qvalid; c0 += 16)")
                lines.append(f"        cf_tile(y + {j} * V * P * Q + c0, P * Q, buf + c0 * V, V, "
                             f"(int)(CF_MIN(CF_MIN(16, {qb} - c0), qvalid - c0)), (int)CF_MIN(V, lanes));")
                lines.append("  }")
            else:
                k_step, q_step = ("g[25]", "g[27]") if self.y_strided else ("P * Qp * V", "V")
                lines.extend(f"  vst(y + {j} * {k_step} + {i} * {q_step}, a{j}_{i});" for i in range(qb))
        lines.append("}")
        chunk = "1"
        if self.y_nchw:
            chunk = str(max(1, 64 // qb)) + (" * kgroups" if self.order.endswith("k") else "")
            y_base = f"(((n * G + gg) * Kg + kg * {kb} * V) * P + p) * Q"
            y_step, kvalid = f"{qb}", f"Kg - kg * {kb} * V"
        elif self.y_strided:
            y_base = f"g[28] + (n * G + gg) * g[24] + kg * {kb} * g[25] + p * g[26]"
            y_step, kvalid = f"{qb} * g[27]", "0"
        else:
            y_base = f"(((n * G + gg) * Kgp + kg * {kb}) * P + p) * Qp * V"
            y_step, kvalid = f"{qb} * V", "0"
        lines.append(f"""
/* x [N][G][Cgb][Hp][Wp][XL] (or NCHW [N][G*Cg][Hp][Wp] in place); w [G][Kgp][Cgb][V][R][S][V], or through
   element strides g[17..23] (group, k block, c block, c lane, tap (r, s) at t0 + r*tr + s*ts: a stride
   phase reads its taps of the whole packed filter); y [N][G][Kgp][P][Qp][V], or through element
   strides g[24..28] (image, k block, row, column, origin: a stride phase writes its pixels of one blocked
   output shared by the phases), or NCHW [N][G*Kg][P][Q] in place; Kgp % {kb} == 0, Qp % {qb} == 0 */
void {self.symbol}(const float* restrict x, const float* restrict w, float* restrict y, const long* g,
                 const unsigned char* rowmask) {{
  const long N = g[0], G = g[1], Cgb = g[2], Kgp = g[3], Hp = g[4], Wp = g[5], R = g[6], S = g[7], P = g[8],
             Qp = g[9], sw = g[11], Cg = g[14], Kg = g[15], Q = g[16];
  (void)Cg; (void)Kg; (void)sw; (void)Hp; (void)Wp;
  const long kgroups = Kgp / {kb}, qblocks = Qp / {qb}, tasks = N * G * kgroups * P * qblocks;
  /* one task = one register tile; in place, neighbouring tiles share cache lines of an NCHW row,
     so a thread takes ~64 columns of a row at a time (all their k-block groups when those vary
     fastest), keeping 16 chunks per team member for balance; dynamic: a thread that loses its
     core to another process does not hold the others back */
  const long want = {chunk}, chunk = want < tasks / 16 ? want : (tasks >= 16 ? tasks / 16 : 1);
  #pragma omp parallel for schedule(dynamic, chunk)
  for (long t = 0; t < tasks; t++) {{
{task_indices(self.order, {"n": "N * G", "k": "kgroups", "p": "P * qblocks"})}
    const long gg = ng % G, n = ng / G, p = pq / qblocks, qb = pq % qblocks;
    const float* xn = x + (n * G + gg) * {image};
    const float* wk = w + {"gg * g[17] + kg * " + str(kb) + " * g[18]" if self.w_taps else
                           "(gg * Kgp + kg * " + str(kb) + ") * Cgb * R * S * V * V"};
    float* yk = y + {y_base};
    tile(xn + qb * {qb} * {column}, wk, yk + qb * {y_step}, g, rowmask, p, Q - qb * {qb}, {kvalid});
  }}
}}
""")
        return "\n".join(lines)


@dataclass(frozen=True)
class WgradCore:
    v: int
    nb: int
    qb: int
    kb: int
    style: str = "vector_ext"
    x_strided: bool = False  # read x in place through runtime strides g[19..22] (core batch, channel, row, column)

    symbol = "cf_conv_wgrad"

    def source(self) -> str:
        nb, qb, kb = self.nb, self.qb, self.kb
        out = {f"a{j}_{m}_{i}": f"y + {j} * yks + ({m} * P * Qp + {i}) * V"  # accumulator -> its place in y
               for j in range(kb) for m in range(nb) for i in range(qb)}
        acc = list(out)
        lines = [header(self.v, self.style)]
        lines.append("static inline void tile(const float* restrict x, const float* restrict w, "
                     "float* restrict y, const long* g, const unsigned char* rowmask, long p, long j0, long j1) {")
        lines.append("  const long Cc = g[2], Hp = g[4], Wp = g[5], R = g[6], S = g[7], P = g[8], Qp = g[9], "
                     "sh = g[10], sw = g[11], dh = g[12], dw = g[13], Np = g[15];")
        lines.append(f"  const long wks = Cc * R * S * V, yks = Np * P * Qp * V, swn = sw * {nb};")
        lines.append("  (void)Hp; (void)Wp; (void)swn;")
        if self.x_strided:
            lines.append("  const long sN = g[19], sC = g[20], sH = g[21], sW = g[22], swx = sw * sW;")
        lines.append(f"  vf {', '.join(acc)};")
        lines.append("  if (j0 == 0 && !g[18]) { " + " ".join(f"{a} = (vf){{0}};" for a in acc) + " }")
        lines.append("  else { " + " ".join(f"{a} = vld({out[a]});" for a in acc) + " }")
        lines.append("  for (long j = j0; j < j1; j++) {")
        lines.append("    const long c = j / R, r = j % R, row = p * sh + r * dh;")
        lines.append("    if (!rowmask[row]) continue;")
        lines.append("    const float* xr = x + c * sC + row * sH;" if self.x_strided else
                     f"    const float* xr = x + (c * Hp + row) * Wp * {nb};")
        lines.append("    const float* wr = w + j * S * V;")
        lines.append("    for (long s = 0; s < S; s++) {")
        lines.append("      const float* xs = xr + s * dw * sW;" if self.x_strided else
                     f"      const float* xs = xr + s * dw * {nb};")
        for j in range(kb):
            lines.append(f"      const vf w{j} = vld(wr + {j} * wks + s * V);")
        for i in range(qb):
            for m in range(nb):
                at = f"{i} * swx + {m} * sN" if self.x_strided else f"{i} * swn + {m}"
                lines.append(f"      {{ const float xv = xs[{at}];")
                for j in range(kb):
                    lines.append(f"        FMA(a{j}_{m}_{i}, w{j}, xv);")
                lines.append("      }")
        lines.append("    }\n  }")
        lines.extend(f"  vst({out[a]}, {a});" for a in acc)
        lines.append("}")
        x_block = (f"nbk * {nb} * g[19] + gg * Cc * g[20] + qbk * {qb} * g[11] * g[22]"
                   if self.x_strided else f"((gg * nblk + nbk) * Cc * Hp * Wp) * {nb} + qbk * {qb} * g[11] * {nb}")
        lines.append(f"""
/* x [G][NBLK][Cc][Hp][Wp][{nb}] (or in place through strides), w [G][Kgp][Cc][R][S][V],
   y [G][Kgp][Np][P][Qp][V], Np = NBLK*{nb}; g[16] reduction rows (c, r) per chunk, g[17] spans,
   g[18] = 1: y already holds partial sums (of earlier slices of the batch) to add to.
   A task owns the register blocks of one k-block group and a span of core-batch blocks and runs
   the reduction over (c, r, s) chunk by chunk, all its blocks per chunk: the filter rows of a
   chunk stay in L2 across the span, partial sums wait in y (no other task writes them).
   Dynamic schedule: a preempted thread does not hold the other back. */
void {self.symbol}(const float* restrict x, const float* restrict w, float* restrict y, const long* g,
                 const unsigned char* rowmask) {{
  const long G = g[1], Cc = g[2], Kgp = g[3], Hp = g[4], Wp = g[5], R = g[6], S = g[7], P = g[8], Qp = g[9],
             Np = g[15], chunk = g[16], spans = g[17];
  (void)Hp; (void)Wp;
  const long nblk = Np / {nb}, kgroups = Kgp / {kb}, qblocks = Qp / {qb}, per = (nblk + spans - 1) / spans;
  const long tasks = G * kgroups * spans * P * qblocks, rows = Cc * R;
  #pragma omp parallel for schedule(dynamic, 1)
  for (long t = 0; t < tasks; t++) {{
    const long qbk = t % qblocks, p = (t / qblocks) % P, sp = (t / qblocks / P) % spans;
    const long kg = (t / qblocks / P / spans) % kgroups, gg = t / qblocks / P / spans / kgroups;
    const float* wc = w + (gg * Kgp + kg * {kb}) * Cc * R * S * V;
    const long last = (sp + 1) * per < nblk ? (sp + 1) * per : nblk;
    for (long j0 = 0; j0 < rows; j0 += chunk)
      for (long nbk = sp * per; nbk < last; nbk++)
        tile(x + {x_block}, wc,
             y + ((((gg * Kgp + kg * {kb}) * Np + nbk * {nb}) * P + p) * Qp + qbk * {qb}) * V,
             g, rowmask, p, j0, j0 + chunk < rows ? j0 + chunk : rows);
  }}
}}
""")
        return "\n".join(lines)


@dataclass(frozen=True)
class SpatialCore:
    """Vectors along the output row for cores with few output channels (e.g. dX of an RGB stem):
    y[n][k][p][q..q+V] += w[k][c][r][s] * x[n][c][p*sh+r*dh][q+s*dw .. +V]; needs unit column stride."""

    v: int
    qv: int  # vectors along q per register block
    kb: int  # output channels per register block
    style: str = "vector_ext"

    symbol = "cf_conv_spatial"

    def source(self) -> str:
        qv, kb = self.qv, self.kb
        acc = [f"a{j}_{i}" for j in range(kb) for i in range(qv)]
        lines = [header(self.v, self.style)]
        lines.append(f"""
/* x [N][G][Hp][Cg][Wp] (the rows of all channels together: a task reads R contiguous runs),
   w [G][Kp/{kb}][Cg][R][S][{kb}], y [N][G][Kp][P][Qp]; Qp % ({qv} * V) == 0 */
void {self.symbol}(const float* restrict x, const float* restrict w, float* restrict y, const long* g,
                 const unsigned char* rowmask) {{
  const long N = g[0], G = g[1], Cg = g[2], Kp = g[3], Hp = g[4], Wp = g[5], R = g[6], S = g[7], P = g[8],
             Qp = g[9], sh = g[10], dh = g[12], dw = g[13];
  const long kgroups = Kp / {kb}, qblocks = Qp / ({qv} * V), tasks = N * G * kgroups * P * qblocks;
  /* channel groups vary fastest: consecutive tasks reuse the same input columns from cache */
  #pragma omp parallel for schedule(dynamic, 1)
  for (long t = 0; t < tasks; t++) {{
    const long kg = t % kgroups, qb = (t / kgroups) % qblocks, p = (t / kgroups / qblocks) % P;
    const long gg = (t / kgroups / qblocks / P) % G, n = t / kgroups / qblocks / P / G;
    const float* xn = x + (n * G + gg) * Cg * Hp * Wp + qb * {qv} * V;
    const float* wk = w + (gg * kgroups + kg) * Cg * R * S * {kb};
    float* yk = y + (((n * G + gg) * Kp + kg * {kb}) * P + p) * Qp + qb * {qv} * V;
    vf {', '.join(acc)};
    {' '.join(f'{a} = (vf){{0}};' for a in acc)}
    for (long r = 0; r < R; r++) {{
      const long row = p * sh + r * dh;
      if (!rowmask[row]) continue;
      for (long c = 0; c < Cg; c++) {{
        const float* xr = xn + (row * Cg + c) * Wp;
        const float* wr = wk + (c * R + r) * S * {kb};
        for (long s = 0; s < S; s++) {{
          const float* xs = xr + s * dw;""")
        for j in range(kb):
            lines.append(f"          const float w{j} = wr[s * {kb} + {j}];")
        for i in range(qv):
            lines.append(f"          {{ const vf xv = vld(xs + {i} * V);")
            for j in range(kb):
                lines.append(f"            FMA(a{j}_{i}, xv, w{j});")
            lines.append("          }")
        lines.append("        }\n      }\n    }")
        for j in range(kb):
            for i in range(qv):
                lines.append(f"    vst(yk + {j} * P * Qp + {i} * V, a{j}_{i});")
        lines.append("  }\n}\n")
        return "\n".join(lines)


@dataclass(frozen=True)
class GemmCore:
    v: int
    mr: int
    nr: int  # vectors per row of the register block
    style: str = "vector_ext"

    symbol = "cf_gemm"

    def source(self) -> str:
        mr, nr = self.mr, self.nr
        acc = [f"c{i}_{j}" for i in range(mr) for j in range(nr)]
        body = [header(self.v, self.style)]
        body.append(f"""
/* C [G][Mp][Np] = A [G][Mp][K] @ B [G][K][Np];  Mp % {mr} == 0, Np % ({nr} * V) == 0 */
void {self.symbol}(const float* restrict a, const float* restrict b, float* restrict c, const long* g,
             const unsigned char* unused) {{
  (void)unused;
  const long G = g[0], Mp = g[1], Np = g[2], K = g[3];
  const long mblocks = Mp / {mr}, nblocks = Np / ({nr} * V), tasks = G * nblocks * mblocks;
  #pragma omp parallel for schedule(dynamic, 1)
  for (long t = 0; t < tasks; t++) {{
    const long mb = t % mblocks, nbk = (t / mblocks) % nblocks, gg = t / mblocks / nblocks;
    const float* ap = a + (gg * Mp + mb * {mr}) * K;
    const float* bp = b + gg * K * Np + nbk * {nr} * V;
    float* cp = c + (gg * Mp + mb * {mr}) * Np + nbk * {nr} * V;
    vf {', '.join(acc)};
    {' '.join(f'{x} = (vf){{0}};' for x in acc)}
    for (long k = 0; k < K; k++) {{""")
        for j in range(nr):
            body.append(f"      const vf b{j} = vld(bp + k * Np + {j} * V);")
        for i in range(mr):
            body.append(f"      {{ const float av = ap[{i} * K + k];")
            for j in range(nr):
                body.append(f"        FMA(c{i}_{j}, b{j}, av);")
            body.append("      }")
        body.append("    }")
        for i in range(mr):
            for j in range(nr):
                body.append(f"    vst(cp + {i} * Np + {j} * V, c{i}_{j});")
        body.append("  }\n}\n")
        return "\n".join(body)
