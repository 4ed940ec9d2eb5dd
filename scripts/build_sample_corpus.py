"""Rebuild the bundled sample corpus from FaQuAD (one .txt per title, paragraphs joined).

    python scripts/build_sample_corpus.py ../shared/data/faquad/train.json pipeline/sample_corpus
"""

from __future__ import annotations

import json
import sys
import unicodedata
from collections import defaultdict
from pathlib import Path

ATTRIBUTION = """# Corpus de exemplo

Os arquivos .txt desta pasta são os documentos do FaQuAD (divisão de treino), um conjunto de perguntas e
respostas em português sobre normas oficiais de uma universidade federal brasileira (UFMS/FACOM): um arquivo
por título, com os parágrafos unidos.

- Fonte: repositório público liafacom/faquad, arquivo data/train.json, commit 6ad978f.
- Artigo: Sayama, H. F., Araujo, A. V., Fernandes, E. R. "FaQuAD: Reading Comprehension Dataset in the Domain
  of Brazilian Higher Education", BRACIS 2019.
- Licença: Creative Commons Atribuição 4.0 Internacional (CC BY 4.0),
  http://creativecommons.org/licenses/by/4.0/
"""


def ascii_name(title: str) -> str:
    folded = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    return "".join(c if c.isalnum() or c in "_-" else "_" for c in folded)


def main(src: str, dst: str) -> None:
    data = json.loads(Path(src).read_text(encoding="utf-8"))["data"]
    docs: dict[str, list[str]] = defaultdict(list)
    for article in data:
        for paragraph in article["paragraphs"]:
            context = paragraph["context"].strip()
            if context not in docs[ascii_name(article["title"])]:
                docs[ascii_name(article["title"])].append(context)
    out = Path(dst)
    out.mkdir(parents=True, exist_ok=True)
    for name, paragraphs in sorted(docs.items()):
        (out / f"{name}.txt").write_text("\n\n".join(paragraphs) + "\n", encoding="utf-8")
    (out / "ATTRIBUTION.md").write_text(ATTRIBUTION, encoding="utf-8")
    print(f"{len(docs)} documents written to {out}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
