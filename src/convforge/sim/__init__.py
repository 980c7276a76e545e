"""Accelerator machine models: one engine (`machine`), a plug-in per ISA (gemmini, vta, davinci)."""
