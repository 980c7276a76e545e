"""The host CPU backend: plans lowered to generated C, compiled with the system compiler."""

from .build import compile_host
from .toolchain import CompileError, CompilerNotFoundError

__all__ = ["CompileError", "CompilerNotFoundError", "compile_host"]
