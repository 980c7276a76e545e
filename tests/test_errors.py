"""Bad input to plans and executors: clear errors naming what is wrong, before anything runs."""

from __future__ import annotations

import numpy as np
import pytest

import convforge as cf

P = cf.ConvProblem(2, 4, 6, 9, 9, 3, 3, stride=2, padding=1)


def operands(direction="fwd"):
    return cf.reference.random_operands(P, direction, np.random.default_rng(0))


@pytest.mark.parametrize("call, error, message", [
    (lambda: cf.plan(P, "fwd", "phase_split"), ValueError, "algorithm 'phase_split' is not available for fwd"),
    (lambda: cf.plan(P, "bwd_data", "winograd"), ValueError, "algorithm 'winograd'"),
    (lambda: cf.plan(P, "sideways"), ValueError, "direction must be one of"),
    (lambda: cf.plan("n1c3h8k4r3", "fwd"), TypeError, "problem must be a ConvProblem"),
    (lambda: cf.plan(P, "fwd", layouts={"x": "NCWH"}), ValueError, "unknown layout 'NCWH'"),
    (lambda: cf.plan(P, "fwd", layouts={"x": "OIHW"}), ValueError, "layout for 'x' must be a activation"),
    (lambda: cf.plan(P, "fwd", layouts={"z": "NCHW"}), ValueError, "unknown tensor role 'z'"),
    (lambda: cf.plan(P, "fwd").run(operands()[0]), TypeError, "takes 2 operands"),
    (lambda: cf.plan(P, "fwd").run(operands()[0], operands()[0]), ValueError, r"w must have shape \(6, 4, 3, 3\)"),
    (lambda: cf.plan(P, "bwd_data").run(*operands()), ValueError, r"y must have shape \(2, 6, 5, 5\)"),
    (lambda: cf.plan(P, "fwd").run(operands()[0].astype(complex), operands()[1]), TypeError, "real numeric dtype"),
    (lambda: cf.plan(P, "fwd").run(operands()[0] > 0, operands()[1]), TypeError, "real numeric dtype"),
    (lambda: cf.plan(P, "fwd").run(operands()[0].tolist(), operands()[1]), TypeError, "numpy.ndarray"),
    (lambda: cf.reference.fwd(P, *operands("bwd_data")), ValueError, "x must have shape"),
    (lambda: cf.reference.compute(P, "fwd", operands()[0]), TypeError, "takes 2 operands"),
])
def test_bad_input_raises_clear_error(call, error, message):
    with pytest.raises(error, match=message):
        call()
