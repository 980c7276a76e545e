"""Backends: lowering of plan stages + configs to runnable code, one subpackage per target kind."""
