"""The span reader: answer location, features, the unlikelihood loss, LoRA training and the shipped adapter."""

from __future__ import annotations

import json

import pytest

from pipeline.answering.reader import SHIPPED_ADAPTER, SpanReader, base_model, past_marker, table_cell, words_edge
from pipeline.training.reader_train import (QAExample, ReaderTrainArgs, featurize, hard_negatives, locate_answer, main,
                                   reader_loss, save_adapter)

PASSAGE = ("A Universidade Federal de Mato Grosso do Sul (UFMS) tem sede em Campo Grande. "
           "A taxa de inscrição do vestibular é de R$ 80,00 e deve ser paga até 10 de março de 2026.")


@pytest.fixture(scope="module")
def shipped_reader(model_cache_dir):
    if not (SHIPPED_ADAPTER / "adapter_config.json").is_file():
        pytest.fail(f"the shipped reader adapter is missing at {SHIPPED_ADAPTER}")
    return SpanReader.load(adapter="shipped", cache_dir=model_cache_dir)


def test_words_edge_widens_to_whole_words_and_strips_punctuation():
    text = "O prazo é de 50 (cinquenta) dias, contados da publicação."
    start = text.index("0 (cinq")
    assert text[slice(*words_edge(text, start, start + 6))] == "50 (cinquenta) dias"  # the count with its word
    at = text.index("dias,")
    assert text[slice(*words_edge(text, at, at + 5))] == "dias"


def test_words_edge_never_leaves_a_bracket_open_or_closed_alone():
    """A span that starts inside a parenthesis takes its opening (and the figure it spells out); an opening
    bracket whose closing one is in the span is not stripped as punctuation."""
    def edge(text, piece):
        at = text.index(piece)
        return text[slice(*words_edge(text, at, at + len(piece)))]

    assert edge("com antecedência mínima de 4 (quatro) horas.", "quatro) horas") == "4 (quatro) horas"
    assert edge("pelo telefone (49) 3581-2047.", "49) 3581-2047") == "(49) 3581-2047"
    assert edge("pelo telefone (49) 3581-2047.", "(49) 3581") == "(49) 3581"
    assert edge("taxa de R$ 30,00 (trinta reais), paga", "trinta reais)") == "R$ 30,00 (trinta reais)"
    assert edge("conforme (anexo) final", "anexo) final") == "(anexo) final"
    assert edge("(ver item 3). Depois, o prazo", "Depois") == "Depois"  # a bracket outside the span: untouched


def test_words_edge_completes_a_written_out_count_with_the_word_it_counts():
    """Official texts write counts as "12 (doze) meses": the answer takes the counted word, never for money, a
    percentage or a closed-class word that follows."""
    def edge(text, piece):
        at = text.index(piece)
        return text[slice(*words_edge(text, at, at + len(piece)))]

    assert edge("terá 60 (sessenta) dias para requerer", "60") == "60 (sessenta) dias"
    assert edge("receberão 2 (duas) doses, com intervalo", "2 (duas)") == "2 (duas) doses"
    assert edge("multa de R$ 150,00 (cento e cinquenta reais) aplicada", "R$ 150,00") == \
        "R$ 150,00 (cento e cinquenta reais)"
    assert edge("corresponde a 80% (oitenta por cento) do valor", "80%") == "80% (oitenta por cento)"
    assert edge("até 3 (três) e no máximo", "3 (três)") == "3 (três)"
    assert edge("no prazo de 5 (cinco), contados", "5 (cinco)") == "5 (cinco)"


def test_table_cell_widens_a_span_in_a_table_row_to_its_cell_and_leaves_prose_alone():
    text = ("Feira | Local | Horário\nFeira do Jardim | Rua das Acácias, entre os nºs 100 e 400 | 15h às 21h\n"
            "A feira fica na Rua das Acácias, perto da praça.")
    def cell(piece, at=0):
        start = text.index(piece, at)
        return text[slice(*table_cell(text, start, start + len(piece)))]

    assert cell("Rua das Acácias") == "Rua das Acácias, entre os nºs 100 e 400"
    assert cell("21h") == "15h às 21h"  # the last cell of its row
    assert cell("Feira do Jardim") == "Feira do Jardim"  # already the whole cell
    assert cell("Rua das Acácias", text.index("A feira")) == "Rua das Acácias"  # prose: unchanged
    start = text.index("Jardim")  # a span across cells is not a cell's: unchanged
    assert table_cell(text, start, text.index("Acácias") + 7) == (start, text.index("Acácias") + 7)


def test_past_marker_drops_the_structural_marker_that_opens_a_line_and_nothing_else():
    text = ("Art. 6º A inscrição será feita no CRAS do bairro.\nII – gestantes e puérperas;\n§ 2º O prazo é de 10 dias."
            "\n8.1 Para a matrícula, leve duas fotos.\n10.5 milhões de pessoas\n2.1 Técnico | Integral | 40\n"
            "conforme o Art. 5º desta portaria")
    def span(piece):
        start = text.index(piece)
        return text[slice(*past_marker(text, start, start + len(piece)))]

    assert span("Art. 6º A inscrição será feita no CRAS") == "A inscrição será feita no CRAS"
    assert span("II – gestantes e puérperas") == "gestantes e puérperas"
    assert span("§ 2º O prazo é de 10 dias") == "O prazo é de 10 dias"
    assert span("8.1 Para a matrícula") == "Para a matrícula"
    assert span("Art. 6º") == "Art. 6º"  # only the marker: it is the answer
    assert span("10.5 milhões") == "10.5 milhões"  # a figure, not an item's number
    assert span("2.1 Técnico") == "2.1 Técnico"  # a table row: its cell decides
    assert span("Art. 5º desta portaria") == "Art. 5º desta portaria"  # a reference inside a sentence


def test_locate_answer_at_its_offset_elsewhere_folded_or_not_at_all():
    context = "Em 1979 a universidade foi federalizada. Em Campo Grande fica a sede."
    assert locate_answer(context, "1979", 3) == 3
    assert locate_answer(context, "Campo Grande", 0) == context.index("Campo Grande")  # wrong offset: found
    assert locate_answer(context, "campo grande", None) == context.index("Campo Grande")  # case folded
    assert locate_answer("A inscrição é grátis.", "inscricao", None) == 2  # accents folded, offsets kept
    assert locate_answer(context, "Dourados", 10) is None


def test_features_label_the_answer_tokens_and_send_the_rest_to_the_start_token(model_cache_dir):
    _, tokenizer = base_model("embedded", model_cache_dir)
    start = PASSAGE.index("Campo Grande")
    examples = [QAExample("Onde fica a sede?", PASSAGE, start, "Campo Grande"),
                QAExample("Quem é o reitor?", PASSAGE),
                QAExample("Onde fica a sede?", PASSAGE, rejected=(PASSAGE.index("R$ 80,00"),
                                                                    PASSAGE.index("R$ 80,00") + 8))]
    features = featurize(tokenizer, examples, max_length=128, stride=32)
    assert len(features) == 3
    answer, unanswerable, negative = features
    decoded = tokenizer.decode(answer["input_ids"][answer["start"]:answer["end"] + 1]).strip()
    assert decoded == "Campo Grande"
    assert (unanswerable["start"], unanswerable["end"]) == (0, 0) and unanswerable["positive"]
    assert not negative["positive"]
    assert "80,00" in tokenizer.decode(negative["input_ids"][negative["neg_start"]:negative["neg_end"] + 1])


def test_a_window_without_the_answer_points_at_the_start_token(model_cache_dir):
    _, tokenizer = base_model("embedded", model_cache_dir)
    context = "Texto de enchimento sem resposta. " * 20 + "A sede fica em Campo Grande."
    start = context.index("Campo Grande")
    features = featurize(tokenizer, [QAExample("Onde fica a sede?", context, start, "Campo Grande")],
                         max_length=64, stride=16)
    assert len(features) > 1
    assert sum(f["start"] > 0 for f in features) >= 1
    assert any(f["start"] == 0 and f["end"] == 0 for f in features)
    only = featurize(tokenizer, [QAExample("Onde fica a sede?", context, start, "Campo Grande")],
                     max_length=64, stride=16, answer_windows_only=True)
    assert only and all(f["start"] > 0 for f in only)


def test_unlikelihood_lowers_the_rejected_span_and_never_raises_it():
    import torch

    start = torch.zeros(1, 6, requires_grad=True)
    end = torch.zeros(1, 6, requires_grad=True)
    label = torch.tensor([0])
    neg = torch.tensor([3])
    loss = reader_loss(start, end, label, label, neg, neg, torch.tensor([False]))
    loss.backward()
    assert start.grad[0, 3] > 0 and end.grad[0, 3] > 0  # gradient descent lowers the rejected logits
    assert all(start.grad[0, i] < 0 for i in (0, 1, 2, 4, 5))  # and raises every other place, the null too


def test_hard_negatives_pair_a_question_with_another_passage_of_its_document():
    import random

    a, b = "A sede fica em Campo Grande.", "O curso dura quatro anos."
    ex = QAExample("Onde fica a sede?", a, a.index("Campo"), "Campo Grande")
    out = hard_negatives([ex], {"doc": [a, b]}, {a: "doc", b: "doc"}, random.Random(0))
    assert out == [QAExample("Onde fica a sede?", b)]


def test_lora_training_moves_the_adapter_and_keeps_the_encoder(tmp_path, model_cache_dir):
    import torch
    from peft import PeftModel

    start = PASSAGE.index("Campo Grande")
    examples = [QAExample("Onde fica a sede?", PASSAGE, start, "Campo Grande"),
                QAExample("Quanto custa a inscrição?", PASSAGE, PASSAGE.index("R$ 80,00"), "R$ 80,00")] * 4
    report = main(ReaderTrainArgs(output_dir=tmp_path / "adapter", examples=examples, epochs=1, batch_size=4,
                                  cache_dir=model_cache_dir, precision="fp32", max_length=96))
    assert report.steps == 2 and report.windows == 8
    assert (tmp_path / "adapter" / "adapter_model.safetensors").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".adapter-")]  # no staging left behind
    base, _ = base_model("embedded", model_cache_dir)
    reference = {k: v.clone() for k, v in base.state_dict().items()}
    tuned = PeftModel.from_pretrained(base_model("embedded", model_cache_dir)[0], str(tmp_path / "adapter"))
    lora = {k: v for k, v in tuned.state_dict().items() if "lora_B" in k}
    assert lora and any(v.abs().sum() > 0 for v in lora.values())  # B starts at zero: it moved
    frozen = tuned.base_model.model.bert.encoder.layer[0].attention.self.query.base_layer.weight
    assert torch.equal(frozen, reference["bert.encoder.layer.0.attention.self.query.weight"])


def test_save_adapter_replaces_a_folder_whole(tmp_path):
    class Fake:
        def __init__(self, text):
            self.text = text

        def save_pretrained(self, folder):
            from pathlib import Path

            (Path(folder) / "adapter_config.json").write_text(self.text)

    save_adapter(Fake("one"), tmp_path / "a")
    save_adapter(Fake("two"), tmp_path / "a")
    assert (tmp_path / "a" / "adapter_config.json").read_text() == "two"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]


def test_training_refuses_nothing_to_learn(tmp_path):
    with pytest.raises(ValueError, match="no training examples"):
        main(ReaderTrainArgs(output_dir=tmp_path / "a", examples=[]))


def test_the_shipped_reader_finds_a_place_a_value_and_a_date(shipped_reader):
    passages = [PASSAGE]
    assert shipped_reader.read("Onde fica a sede da UFMS?", passages)[0].text == "Campo Grande"
    assert "80,00" in shipped_reader.read("quanto custa a inscricao do vestibular?", passages)[0].text
    assert "10 de março" in shipped_reader.read("ate quando posso pagar a taxa?", passages)[0].text


def test_the_shipped_reader_prefers_the_passage_that_answers(shipped_reader):
    other = "O restaurante universitário abre às 11 horas e fecha às 14 horas."
    best = shipped_reader.read("Onde fica a sede da UFMS?", [other, PASSAGE])[0]
    assert best.passage == 1 and best.text == "Campo Grande"


def test_the_no_answer_margin_separates_answerable_from_unanswerable(shipped_reader):
    answerable = shipped_reader.read("Onde fica a sede da UFMS?", [PASSAGE])[0].margin
    unanswerable = shipped_reader.read("Qual é o nome do reitor da UFMS?", [PASSAGE])
    assert not unanswerable or unanswerable[0].margin < answerable - 2


def test_excluded_spans_are_never_returned(shipped_reader):
    first = shipped_reader.read("Onde fica a sede da UFMS?", [PASSAGE])[0]
    again = shipped_reader.read("Onde fica a sede da UFMS?", [PASSAGE], exclude=[(0, first.start, first.end)])
    assert all(not (s.start < first.end and first.start < s.end) for s in again)


def test_blank_input_reads_nothing(shipped_reader):
    assert shipped_reader.read("Onde?", ["", "   "]) == []
    assert shipped_reader.read("   ", [PASSAGE]) == []


def test_shipped_adapter_metadata_names_its_data():
    card = json.loads((SHIPPED_ADAPTER / "training.json").read_text(encoding="utf-8"))
    assert sum(p["data"]["total"] for p in card["passes"]) > 5000 and card["data"] == card["passes"][-1]["data"]
    assert card["evaluation"]["faquad_heldout_gold"]["n"] > 100
