"""Benchmark harness: ConvForge kernels against torch (or any candidate), timed in the same run.

Modules: `timing` (alternating rounds, per-round medians, minimum over rounds), `candidates` (what
can be timed), `baselines` (torch), `harness` (prepare, check, time), `results` (raw data, JSON),
`peak` (measured FMA peak), `machine` (machine facts, allocator pinning), `report` (tables),
`plot` (ratio chart). The `convforge bench` command wires them together.
"""
