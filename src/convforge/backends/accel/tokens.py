"""Dependency tokens for VTA: infer, from the regions each instruction touches, the cross-module
orderings the program needs, and express them with the four token queues.

For each consumer and each other module it depends on (RAW, WAR or WAW on a buffer region or a DRAM
tensor), only the latest producer matters (modules run in order). A token is pushed by that producer
and popped by the consumer, unless an earlier consumer on the same module already waited for a
producer at least as late. LOAD and STORE share no queue: such a dependency goes through a
`GEMM.nop` on the compute module (s2g then g2l, or l2g then g2s).
"""

from __future__ import annotations

from ...sim.vta import Nop

QUEUES = {("LOAD", "COMPUTE"): "l2g", ("COMPUTE", "LOAD"): "g2l", ("COMPUTE", "STORE"): "g2s",
          ("STORE", "COMPUTE"): "s2g"}


def _touches(ins):
    out = [((r.buffer, r.start, r.start + r.count), False) for r in ins.reads()]
    out += [((r.buffer, r.start, r.start + r.count), True) for r in ins.writes()]
    out += [((f"dram:{t}", 0, 1), False) for t in ins.dram_reads()]
    out += [((f"dram:{t}", 0, 1), True) for t in ins.dram_writes()]
    return out


def insert_tokens(program: list) -> list:
    """A new program with pops/pushes set (and nops added) so that every cross-module hazard is ordered."""
    program = list(program)
    for ins in program:
        ins.pops, ins.pushes = (), ()
    # per region key: last writer (index), readers since (indices)
    history: dict[str, list[list]] = {}
    out: list = []
    synced: dict[tuple[str, str], int] = {}  # (producer module, consumer module) -> latest producer waited for
    for ins in program:
        need: dict[str, int] = {}  # producer module -> latest producer index in `out`
        for (buf, lo, hi), is_write in _touches(ins):
            for iv in history.get(buf, []):
                if iv[0] < hi and lo < iv[1]:
                    deps = ([iv[2]] if iv[2] is not None else []) + (iv[3] if is_write else [])
                    for d in deps:
                        eng = out[d].engine
                        if eng != ins.engine:
                            need[eng] = max(need.get(eng, -1), d)
        for eng, producer in sorted(need.items()):
            if synced.get((eng, ins.engine), -1) >= producer:
                continue
            if (eng, ins.engine) in QUEUES:
                _link(out[producer], ins, QUEUES[(eng, ins.engine)])
            else:  # LOAD <-> STORE through a compute nop
                nop = Nop()
                nop.pops, nop.pushes = (), ()
                if synced.get((eng, "COMPUTE"), -1) < producer:
                    _link(out[producer], nop, QUEUES[(eng, "COMPUTE")])
                    synced[(eng, "COMPUTE")] = producer
                _link(nop, ins, QUEUES[("COMPUTE", ins.engine)])
                out.append(nop)
                synced[("COMPUTE", ins.engine)] = len(out) - 1
            synced[(eng, ins.engine)] = producer
        index = len(out)
        out.append(ins)
        for (buf, lo, hi), is_write in _touches(ins):
            ivs = history.setdefault(buf, [])
            if is_write:
                ivs[:] = [iv for iv in ivs if not (lo <= iv[0] and iv[1] <= hi)]
                ivs.append([lo, hi, index, []])
            else:
                for iv in ivs:
                    if iv[0] < hi and lo < iv[1]:
                        iv[3].append(index)
                        del iv[3][:-8]  # the latest readers suffice (modules are in order)
                if not any(iv[0] < hi and lo < iv[1] for iv in ivs):
                    ivs.append([lo, hi, None, [index]])
    return out


def _link(producer, consumer, queue: str) -> None:
    if queue not in producer.pushes:
        producer.pushes = tuple(producer.pushes) + (queue,)
    consumer.pops = tuple(consumer.pops) + (queue,)
