"""What this CPU can do fast: bf16 detection, for the embedder's dtype and the trainers' precision.

Two questions, answered differently on purpose: :func:`cpu_has_bf16` reads the CPU flags (native bf16 — AVX-512
BF16 or AMX — or else emulated and slower), which decides the embedding dtype; :func:`cpu_has_fast_bf16` asks
torch's oneDNN whether it runs bf16 matmuls natively, which decides the training precision (``auto``).

Example::

    >>> from pipeline.core.hardware import cpu_has_bf16
    >>> isinstance(cpu_has_bf16(), bool)
    True
"""

from __future__ import annotations

from pathlib import Path


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX-512 BF16 or AMX); elsewhere bf16 is emulated, slower."""
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def cpu_has_fast_bf16() -> bool:
    """True on CPUs with native bf16 matmuls (AVX512-BF16, AMX): oneDNN runs them ~2.5x faster than fp32."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())  # what torch's own CPU autocast tests check
    except (AttributeError, RuntimeError):
        try:
            flags = Path("/proc/cpuinfo").read_text()
        except OSError:
            return False
        return " avx512_bf16" in flags or " amx_bf16" in flags
