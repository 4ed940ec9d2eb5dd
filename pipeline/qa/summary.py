"""What one QA generation run did (:func:`pipeline.qa.generate.generate_qa`) and its end-of-run report."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class GenerationSummary:
    """What one run did; :meth:`format` is the end-of-run report."""

    generator: str = ""
    documents: int = 0  # documents given
    generated: list[str] = field(default_factory=list)  # (re)generated this run
    skipped: list[str] = field(default_factory=list)  # unchanged since the last run with the same generator
    removed: list[str] = field(default_factory=list)  # generated files of documents that are gone
    unreadable: list[str] = field(default_factory=list)  # empty or binary input files (filled by the caller)
    n_pairs: int = 0  # pairs written this run, valid or not
    n_valid: int = 0
    n_invalid: int = 0
    chunks_asked: int = 0
    usage: dict = field(default_factory=lambda: {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0})
    errors: list[dict] = field(default_factory=list)
    interrupted: bool = False

    @property
    def valid_pct(self) -> float:
        return 100.0 * self.n_valid / self.n_pairs if self.n_pairs else 0.0

    def format(self) -> str:
        lines = [f"QA generation ({self.generator}): {self.documents} documents — {len(self.generated)} generated, "
                 f"{len(self.skipped)} unchanged, {len(self.removed)} removed, {len(self.unreadable)} unreadable",
                 f"pairs: {self.n_pairs} ({self.n_valid} valid, {self.valid_pct:.1f}%; {self.n_invalid} invalid)",
                 f"tokens: {self.usage['total_tokens']} (prompt {self.usage['prompt_tokens']}, "
                 f"completion {self.usage['completion_tokens']}) over {self.chunks_asked} chunk requests",
                 f"errors: {len(self.errors)}"
                 + (" (those chunks are asked again on the next run)" if self.errors else "")]
        lines += [f"  {e['chunk_id']}: {e['error']}" for e in self.errors[:10]]
        lines += [f"  unreadable: {name}" for name in self.unreadable]
        if self.interrupted:
            lines.append("interrupted: run the same command again to continue")
        return "\n".join(lines)


def add_usage(total: dict, usage: dict) -> None:
    """Add a chunk's token ``usage`` to ``total`` (the keys of ``total`` only)."""
    for key in total:
        total[key] += int(usage.get(key, 0))
