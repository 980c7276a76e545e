"""Quasi-affine integer expressions: the language index maps are written in.

An expression is sum(coef * atom) + const over atoms that are loop variables, floor divisions or
remainders by positive constants. That is enough for every layout (blocking, fractals, merged dims)
and every conversion (pad, crop, flip, zero insertion, transposes, stride phases), and it stays
small enough to simplify with interval bounds, so composed maps print as the loops a person would
write and lower directly to C or to strided DMA descriptors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Var:
    """Loop variable `index` of a map's output, ranging over [0, extent)."""

    index: int
    extent: int


@dataclass(frozen=True)
class FloorDiv:
    expr: Expr
    divisor: int


@dataclass(frozen=True)
class Mod:
    expr: Expr
    divisor: int


Atom = Var | FloorDiv | Mod


def _atom_bounds(atom: Atom) -> tuple[int, int]:
    if isinstance(atom, Var):
        return 0, atom.extent - 1
    lo, hi = atom.expr.bounds()
    if isinstance(atom, FloorDiv):
        return lo // atom.divisor, hi // atom.divisor
    if lo // atom.divisor == hi // atom.divisor:
        return lo % atom.divisor, hi % atom.divisor
    return 0, atom.divisor - 1


def _key(atom: Atom) -> str:
    return repr(atom)


@dataclass(frozen=True)
class Expr:
    """sum(coef * atom for atom, coef in terms) + const, kept canonical (sorted, no zero coefs)."""

    terms: tuple[tuple[Atom, int], ...] = ()
    const: int = 0

    # ------------------------------------------------------------------ construction
    @staticmethod
    def make(terms: dict[Atom, int] | Sequence[tuple[Atom, int]], const: int = 0) -> Expr:
        acc: dict[Atom, int] = {}
        for atom, coef in (terms.items() if isinstance(terms, dict) else terms):
            acc[atom] = acc.get(atom, 0) + coef
        acc, extra = _fold_div_mod({a: c for a, c in acc.items() if c})
        return Expr(tuple(sorted(acc.items(), key=lambda t: _key(t[0]))), int(const) + extra)

    @staticmethod
    def var(index: int, extent: int) -> Expr:
        return Expr(((Var(index, extent), 1),), 0)

    @staticmethod
    def constant(value: int) -> Expr:
        return Expr((), int(value))

    def as_const(self) -> int | None:
        return None if self.terms else self.const

    # ------------------------------------------------------------------ arithmetic
    def __add__(self, other: Expr | int) -> Expr:
        other = _lift(other)
        return Expr.make(list(self.terms) + list(other.terms), self.const + other.const)

    __radd__ = __add__

    def __neg__(self) -> Expr:
        return self * -1

    def __sub__(self, other: Expr | int) -> Expr:
        return self + (-_lift(other))

    def __rsub__(self, other: Expr | int) -> Expr:
        return _lift(other) - self

    def __mul__(self, factor: int) -> Expr:
        if not isinstance(factor, (int, np.integer)):
            raise TypeError("index expressions are affine: multiply by an int only")
        return Expr.make([(a, c * int(factor)) for a, c in self.terms], self.const * int(factor))

    __rmul__ = __mul__

    def __floordiv__(self, d: int) -> Expr:
        d = _divisor(d)
        if d == 1:
            return self
        quotient = [(a, c // d) for a, c in self.terms if c % d == 0]
        rest = Expr.make([(a, c) for a, c in self.terms if c % d], self.const % d)
        base = Expr.make(quotient, self.const // d)
        lo, hi = rest.bounds()
        if lo // d == hi // d:
            return base + lo // d
        split = _split_small(rest, d)
        if split:
            big, _, g = split
            return base + big // (d // g)
        if len(rest.terms) == 1 and rest.const == 0 and rest.terms[0][1] == 1 \
                and isinstance(rest.terms[0][0], FloorDiv):
            inner = rest.terms[0][0]
            return base + Expr(((FloorDiv(inner.expr, inner.divisor * d), 1),))
        return base + Expr(((FloorDiv(rest, d), 1),))

    def __mod__(self, d: int) -> Expr:
        d = _divisor(d)
        if d == 1:
            return Expr.constant(0)
        rest = Expr.make([(a, c % d) for a, c in self.terms], self.const % d)
        lo, hi = rest.bounds()
        if lo // d == hi // d:
            return rest - (lo // d) * d
        split = _split_small(rest, d)
        if split:
            big, small, g = split
            return (big % (d // g)) * g + small
        return Expr(((Mod(rest, d), 1),))

    # ------------------------------------------------------------------ analysis
    def bounds(self) -> tuple[int, int]:
        """Inclusive [min, max] over all values of the variables."""
        lo = hi = self.const
        for atom, coef in self.terms:
            a_lo, a_hi = _atom_bounds(atom)
            lo += min(coef * a_lo, coef * a_hi)
            hi += max(coef * a_lo, coef * a_hi)
        return lo, hi

    def coefficient(self, index: int) -> int | None:
        """The constant step of this expression per unit of variable `index`, None if not affine in it."""
        step = 0
        for atom, coef in self.terms:
            if isinstance(atom, Var):
                if atom.index == index:
                    step += coef
            elif atom.expr.uses(index):
                return None
        return step

    def uses(self, index: int) -> bool:
        return any((a.index == index) if isinstance(a, Var) else a.expr.uses(index) for a, _ in self.terms)

    # ------------------------------------------------------------------ substitution and evaluation
    def substitute(self, values: Sequence[Expr]) -> Expr:
        """Replace variable i by values[i]."""
        out = Expr.constant(self.const)
        for atom, coef in self.terms:
            if isinstance(atom, Var):
                out = out + values[atom.index] * coef
            elif isinstance(atom, FloorDiv):
                out = out + (atom.expr.substitute(values) // atom.divisor) * coef
            else:
                out = out + (atom.expr.substitute(values) % atom.divisor) * coef
        return out

    def evaluate(self, env: Sequence[np.ndarray]) -> np.ndarray | int:
        value: np.ndarray | int = self.const
        for atom, coef in self.terms:
            if isinstance(atom, Var):
                a = env[atom.index]
            elif isinstance(atom, FloorDiv):
                a = np.floor_divide(atom.expr.evaluate(env), atom.divisor)
            else:
                a = np.mod(atom.expr.evaluate(env), atom.divisor)
            value = value + coef * a
        return value

    def to_c(self, names: Sequence[str]) -> str:
        """C source for this expression; floor semantics are kept exact for negative operands."""
        parts = []
        for atom, coef in self.terms:
            if isinstance(atom, Var):
                text = names[atom.index]
            else:
                inner = atom.expr.to_c(names)
                nonneg = atom.expr.bounds()[0] >= 0
                op = "/" if isinstance(atom, FloorDiv) else "%"
                text = (f"(({inner}) {op} {atom.divisor})" if nonneg else
                        f"cf_floor{'div' if op == '/' else 'mod'}({inner}, {atom.divisor})")
            parts.append(text if coef == 1 else f"{coef} * {text}")
        if self.const or not parts:
            parts.append(str(self.const))
        return " + ".join(parts).replace("+ -", "- ")

    def __str__(self) -> str:
        return self.to_c([f"i{k}" for k in range(64)])


def _lift(value: Expr | int) -> Expr:
    if isinstance(value, Expr):
        return value
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return Expr.constant(int(value))
    raise TypeError(f"cannot use {value!r} in an index expression")


def _divisor(d) -> int:
    if isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < 1:
        raise ValueError(f"divisor must be a positive int, got {d!r}")
    return int(d)


def _split_small(e: Expr, d: int) -> tuple[Expr, Expr, int] | None:
    """Write e = g*big + small with g | d and 0 <= small < g, for the largest such g > 1."""
    for g in range(d - 1, 1, -1):
        if d % g:
            continue
        small = Expr.make([(a, c) for a, c in e.terms if c % g], e.const % g)
        lo, hi = small.bounds()
        if lo >= 0 and hi < g:
            big = Expr.make([(a, c // g) for a, c in e.terms if c % g == 0], e.const // g)
            return big, small, g
    return None


def _fold_div_mod(terms: dict[Atom, int]) -> tuple[dict[Atom, int], int]:
    """Rewrite a*d*(e // d) + a*(e % d) back into a*e: what pack-then-unpack leaves behind."""
    const = 0
    changed = True
    while changed:
        changed = False
        for atom, coef in list(terms.items()):
            if not isinstance(atom, FloorDiv):
                continue
            partner = Mod(atom.expr, atom.divisor)
            m = terms.get(partner)
            if m and coef == m * atom.divisor:
                del terms[atom], terms[partner]
                for inner_atom, inner_coef in atom.expr.terms:
                    terms[inner_atom] = terms.get(inner_atom, 0) + inner_coef * m
                const += atom.expr.const * m
                terms = {a: c for a, c in terms.items() if c}
                changed = True
                break
    return terms, const
