"""The generative prompt: the contract between serving (:mod:`pipeline.answering.answer`) and fine-tuning.

The nightly training (:mod:`pipeline.training.examples`) renders every QA record through :func:`build_messages`
exactly as the answerer renders a citizen's question, so the adapter learns the chat it will be asked.

Example::

    >>> from pipeline.llm.prompt import build_messages
    >>> build_messages("Qual o prazo?", [])[0]["role"]
    'system'
"""

from __future__ import annotations

NOT_FOUND_MARKER = "NAO_ENCONTRADO"

# The generative prompt. Portuguese on purpose: the model must answer the citizen in Brazilian Portuguese.
SYSTEM_PROMPT = (
    "Você é o Oráculo, um assistente que responde dúvidas de cidadãos sobre documentos públicos brasileiros. "
    "Responda em português do Brasil, de forma curta e clara (no máximo três frases), usando somente as "
    "informações do contexto. Não invente nada. Se o contexto não contiver a resposta, responda apenas "
    f"{NOT_FOUND_MARKER}."
)


def build_messages(question: str, hits: list) -> list[dict]:
    """The chat messages of the generative strategy (also what fine-tuning trains on)."""
    blocks = []
    for number, hit in enumerate(hits, start=1):
        heading = f"{hit.chunk.title} — {hit.chunk.section}" if hit.chunk.section else hit.chunk.title
        blocks.append(f"[{number}] {heading}\n{hit.chunk.text}")
    context = "\n\n".join(blocks)
    return [{"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": f"Contexto:\n{context}\n\nPergunta: {question}"}]
