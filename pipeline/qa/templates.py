"""Portuguese question templates for offline QA generation: one sentence in, ``(kind, question)`` pairs out.

Pure string work, no model: definitions ("O que é X?"), glossary entries ("Termo: definição."), dates
("Quando ...?", "Quando são as inscrições?"), deadlines ("Qual é o prazo para ...?"),
"considera-se" definitions, purpose ("Qual é a finalidade do ...?"), composition ("Como é composta ...?"),
acronyms ("O que significa a sigla UFMS?"), quantities ("Quantas horas ...?"), money and
percentages ("Qual é o valor da ...?"), who ("Quem é responsável por ...?", "A quem compete ...?") and where
("Onde fica ...?"). The questions are for retrieval and training data, so a stiff phrasing is acceptable; a
wrong one is not, hence the conservative patterns.

Example::

    >>> from pipeline.qa.templates import questions_for_sentence
    >>> questions_for_sentence("A UFMS é uma instituição de ensino superior pública federal.")
    [('definition', 'O que é a UFMS?')]
"""

from __future__ import annotations

import re

from pipeline.core.text import MONTHS_PATTERN

_MAX_SUBJECT_WORDS = 8
_MAX_QUESTION_CHARS = 180
_ANAPHORA = {"ele", "ela", "eles", "elas", "este", "esta", "estes", "estas", "esse", "essa", "esses", "essas",
             "isso", "isto", "aquele", "aquela", "que", "qual", "o qual", "a qual", "onde", "também", "mas",
             "porém", "assim", "então", "já", "ainda", "não", "se", "quando", "como", "para", "por", "em", "de",
             "no", "na", "nos", "nas", "com", "sem", "segundo", "conforme", "após", "durante", "entre", "sob",
             "sobre", "ao", "à", "aos", "às", "outro", "outra", "outros", "outras", "seu", "sua", "seus", "suas"}
# "A mais famosa ...", "O principal ...", "A partir de ...": not the name of a thing.
_NOT_A_NAME = {"mais", "menos", "maior", "menor", "melhor", "pior", "principal", "principais", "primeiro",
               "primeira", "único", "única", "partir", "seguir", "respeito", "fim", "cada", "dos", "das"}
_VERB_OR_NEGATION = {"é", "são", "foi", "foram", "será", "serão", "era", "eram", "que", "não", "nem"}
# Glossary-style labels that are not terms: "Tipos: ...", "Exemplo: ...".
_NOT_A_TERM = {"tipos", "tipo", "exemplo", "exemplos", "objetivo", "objetivos", "obs", "observação", "nota",
               "atenção", "importante", "parágrafo único", "fonte", "resumo", "conclusão", "introdução"}
_ARTICLES = {"o", "a", "os", "as", "um", "uma", "uns", "umas"}
_CONTRACTIONS = {("de", "o"): "do", ("de", "a"): "da", ("de", "os"): "dos", ("de", "as"): "das",
                 ("em", "o"): "no", ("em", "a"): "na", ("em", "os"): "nos", ("em", "as"): "nas",
                 ("de", "um"): "de um", ("de", "uma"): "de uma"}
_NUMBER_WORDS = ("dois|duas|três|quatro|cinco|seis|sete|oito|nove|dez|onze|doze|quinze|vinte|trinta|"
                 "quarenta|cinquenta|sessenta|setenta|oitenta|noventa|cem|cento|duzent[oa]s|trezent[oa]s|"
                 "quatrocent[oa]s|quinhent[oa]s|seiscent[oa]s|mil")
_FEMININE_UNITS = {"horas", "horas-aula", "vagas", "disciplinas", "semanas", "vezes", "faltas", "aulas",
                   "provas", "avaliações", "etapas", "parcelas", "páginas", "cópias", "notas"}
_UNITS = ("horas?(?:-aula)?|dias?(?: úteis| letivos| corridos)?|semestres?|anos?|meses|mês|créditos?|vagas?|"
          "disciplinas?|semanas?|minutos?|pontos?|vezes|membros?|professores?|alunos?|acadêmicos?|períodos?|"
          "faltas?|aulas?|provas?|avaliações|avaliação|etapas?|parcelas?|páginas?|cópias?|notas?|cursos?|"
          "representantes?|docentes?|titulares?|suplentes?")
_PLURAL = {"hora": "horas", "hora-aula": "horas-aula", "dia": "dias", "semestre": "semestres", "ano": "anos",
           "mês": "meses", "crédito": "créditos", "vaga": "vagas", "disciplina": "disciplinas", "semana": "semanas",
           "minuto": "minutos", "ponto": "pontos", "membro": "membros", "professor": "professores",
           "aluno": "alunos", "acadêmico": "acadêmicos", "período": "períodos", "falta": "faltas", "aula": "aulas",
           "prova": "provas", "avaliação": "avaliações", "etapa": "etapas", "parcela": "parcelas",
           "página": "páginas", "cópia": "cópias", "nota": "notas", "curso": "cursos",
           "representante": "representantes", "docente": "docentes", "titular": "titulares",
           "suplente": "suplentes"}

_DEFINITION = re.compile(r"^(?P<subj>[^,;:()]{2,80}?) (?P<verb>é|são) (?P<rest>(?:o|a|os|as|um|uma|uns|umas) .+)$")
_GLOSSARY = re.compile(r"^(?P<term>[A-ZÁÉÍÓÚÂÊÔÃÕÇ][^:;.-]{1,70}?): (?P<rest>[a-zà-ú][^:]{9,})$")
_RESPONSIBLE = re.compile(r"\b(?:é|são|será|serão|ficará|ficarão) (?:o |a |os |as )?responsáve(?:l|is) "
                          r"(?P<rest>(?:por|pela|pelo|pelas|pelos) [^;:]+)$")
_COMPETE = re.compile(r"^(?P<verb>Compete|Cabe|Caberá|Competirá|Incumbe) (?:ao|à|aos|às) (?P<who>[^,;]+?),? "
                      r"(?P<rest>\w+(?:ar|er|ir|or)\b[^;:]*)$")
_WHERE = re.compile(r"^(?P<subj>[^,;:]{2,80}?),? (?:(?:está|fica|é|encontra-se) )?"
                    r"(?:localizad|sediad|situad|instalad)[oa]s? (?:em|no|na|nos|nas) ")
_DATE = re.compile(rf"(?P<lead>(?:^|,? )(?P<prep>[Ee]m|[Nn]o dia|[Dd]esde|[Aa]té|[Nn]o ano de|[Aa] partir de) )"
                   rf"(?P<date>\d{{1,2}}(?:º|o)? de (?:{MONTHS_PATTERN})(?: de \d{{4}})?|\d{{1,2}}/\d{{1,2}}/\d{{2,4}}|"
                   rf"(?:1[89]|20)\d\d)\b,?")
_QUANTITY = re.compile(rf"\b(?P<num>\d+(?:[.,]\d+)?|{_NUMBER_WORDS})(?: \([\w\s-]+\))? (?P<unit>{_UNITS})\b"
                       r"(?P<tail>(?: (?:de|do|da|dos|das) [^,.;()]{1,50})?)", flags=re.IGNORECASE)
_MONEY = re.compile(r"R\$ ?\d[\d.]*(?:,\d{1,2})?")
_PERCENT = re.compile(r"\d+(?:,\d+)? ?(?:%|por cento)")
_VALUE_SUBJECT = re.compile(r"^(?P<subj>.{3,80}?),? (?:é|será|fica|ficará|corresponde a|equivale a|custa|custará|"
                            r"no valor de|no valor total de|de valor)(?: de)?$")
_CONSIDER = re.compile(r"\b(?P<lead>[Cc]onsidera-se|[Cc]onsideram-se|[Ee]ntende-se por|[Ee]ntendem-se por) "
                       r"(?P<term>[^,:;]{2,60}?)[,:]? (?:o|a|os|as|aquel[ea]s?|tod[oa]s?|um|uma|qualquer) ")
_PERIOD_DATE = re.compile(rf"\d{{1,2}}(?:º|o)?(?: de (?:{MONTHS_PATTERN}))?(?: de \d{{4}})? (?:a|até) "
                          rf"\d{{1,2}}(?:º|o)? de (?:{MONTHS_PATTERN})|"
                          r"\d{1,2}/\d{1,2}(?:/\d{2,4})? (?:a|até) \d{1,2}/\d{1,2}")
_EVENT = re.compile(r"^(?P<subj>(?:As|Os|A|O) [^,;:]{3,60}?),? (?:vão|irão|serão|será|ocorrerão|ocorrerá|acontecerão|"
                    r"acontecerá|estarão|estará|poderão|poderá|deverão|deverá|devem|deve|terão|terá|ficarão|ficará|"
                    r"se encerram?|encerram-se|encerra-se|terminam?|começam?|iniciam?|realizam-se|realiza-se)\b")
_DEADLINE_DATE = re.compile(r"\bprazo (?:final |máximo |limite )?(?P<what>para [^,;:]+?),? (?:é|será|vai|termina|"
                            r"encerra-se|se encerra|expira|vence)\b")


def _clean(text: str) -> str:
    return " ".join(text.split()).strip(" ,;:.")


def _question(*parts: str) -> str | None:
    text = _clean(" ".join(p for p in parts if p))
    text = re.sub(r"\s+([,?])", r"\1", text)
    if not text or len(text) > _MAX_QUESTION_CHARS:
        return None
    return text[0].upper() + text[1:] + "?"


def _lower_first(phrase: str) -> str:
    """Lower the first letter unless the phrase opens with a name: an acronym or two capitalised words."""
    words = phrase.split(" ", 2)
    first = words[0]
    if len(first) > 1 and first[1:] != first[1:].lower():  # UFMS, FACOM, PhD
        return phrase
    if first.lower() not in _ARTICLES and len(words) > 1 and words[1][:1].isupper():  # Campo Grande
        return phrase
    return phrase[:1].lower() + phrase[1:]


def _with_de(phrase: str) -> str:
    """'de' + 'a taxa' -> 'da taxa'."""
    first, _, rest = phrase.partition(" ")
    contracted = _CONTRACTIONS.get(("de", first.lower()))
    return f"{contracted} {rest}" if contracted and rest else f"de {phrase}"


def _good_subject(subject: str) -> bool:
    words = subject.split()
    if not 0 < len(words) <= _MAX_SUBJECT_WORDS or subject[0].isdigit() or "," in subject:
        return False
    if words[0].lower() in _ANAPHORA | {"um", "uma", "uns", "umas"} or any(w.lower() in _NOT_A_NAME for w in words[:2]):
        return False
    if any(w.lower() in _VERB_OR_NEGATION for w in words):  # "análise é a atividade que", "... não"
        return False
    return not re.search(r"[\d/]", subject)


def _definition(sentence: str) -> list[tuple[str, str]]:
    match = _DEFINITION.match(sentence)
    if match and _good_subject(match["subj"]):
        return [("definition", _question(f"O que {match['verb']}", _lower_first(match["subj"])))]
    match = _GLOSSARY.match(sentence)
    term = match["term"] if match else ""
    if (match and _good_subject(term) and len(term.split()) <= 6 and term.lower() not in _NOT_A_TERM
            and not re.search(r"(?:em|am)$", term)
            and all(w[0].isupper() for w in term.split() if len(w) > 3)):
        return [("glossary", _question("O que é", match["term"]))]
    return []


def _who(sentence: str) -> list[tuple[str, str]]:
    match = _RESPONSIBLE.search(sentence)
    if match:
        return [("who", _question("Quem é responsável", match["rest"]))]
    match = _COMPETE.match(sentence)
    if match:
        return [("who", _question(f"A quem {match['verb'].lower()}", match["rest"]))]
    return []


def _where(sentence: str) -> list[tuple[str, str]]:
    match = _WHERE.match(sentence)
    if match and _good_subject(match["subj"]) and len(match["subj"].split()) <= 5:
        return [("where", _question("Onde fica", _lower_first(match["subj"])))]
    return []


def _when(sentence: str) -> list[tuple[str, str]]:
    match = _DATE.search(sentence)
    if not match:
        return []
    rest = _clean(sentence[:match.start()] + " " + sentence[match.end():])
    if len(rest.split()) < 3 or len(rest.split()) > 18 or "," in rest:
        return []
    prep = match["prep"].lower()
    lead = {"desde": "Desde quando", "até": "Até quando", "a partir de": "A partir de quando"}.get(prep, "Quando")
    return [("when", _question(lead, _lower_first(rest)))]


def _quantity(sentence: str) -> list[tuple[str, str]]:
    match = _QUANTITY.search(sentence)
    if not match:
        return []
    before = _clean(sentence[:match.start()])
    after = _clean(sentence[match.end():])
    unit = match["unit"].lower()
    unit = _PLURAL.get(unit.split(" ")[0], unit.split(" ")[0]) + unit[len(unit.split(" ")[0]):]
    prazo = re.search(r"\bprazo(?: máximo| mínimo)? de$", before)
    if prazo:
        purpose = re.match(r"^(?:para|a partir|após|contados?|a contar)\b[^,;]*", after)
        return [("deadline", _question("Qual é o prazo", purpose.group()))] if purpose else []
    measure = re.match(r"^(?P<subj>.+?) (?:é|são|será|serão|deve ser|deverá ser)(?: de)?(?: no mínimo| no máximo)?"
                       r"(?: de)?$", before)
    if measure and _good_subject(measure["subj"]) and len(measure["subj"].split()) >= 2:
        return [("quantity", _question("Qual é", _lower_first(measure["subj"])))]  # "Qual é a duração mínima ...?"
    trailing = r",? (?:no mínimo|no máximo|pelo menos|cerca de|até|de|com|em|por|para|entre|durante|a|o)$"
    while re.search(trailing, before):
        before = re.sub(trailing, "", before)
    if not before or len(before.split()) > 12 or not _good_subject(before):
        return []
    how_many = "Quantas" if unit.split(" ")[0].split("-")[0] + ("" if unit.endswith("s") else "s") in \
        _FEMININE_UNITS or unit.split(" ")[0] in _FEMININE_UNITS else "Quantos"
    return [("quantity", _question(how_many, unit + match["tail"], _lower_first(before)))]


def _value(sentence: str) -> list[tuple[str, str]]:
    for kind, pattern, what in (("value", _MONEY, "o valor"), ("percent", _PERCENT, "o percentual")):
        match = pattern.search(sentence)
        if not match:
            continue
        subject = _VALUE_SUBJECT.match(_clean(sentence[:match.start()]))
        if subject and _good_subject(subject["subj"]):
            return [(kind, _question(f"Qual é {what}", _with_de(_lower_first(subject["subj"]))))]
    return []


def _consider(sentence: str) -> list[tuple[str, str]]:
    match = _CONSIDER.search(sentence)
    if not match or not _good_subject(match["term"]):
        return []
    lead = "O que se entende por" if "entende" in match["lead"].lower() else "O que se considera"
    return [("definition", _question(lead, _lower_first(match["term"])))]


def _period(sentence: str) -> list[tuple[str, str]]:
    """'As inscrições vão de 1º a 15 de março' -> 'Quando são as inscrições?'; 'O prazo para X termina em ...'."""
    has_period = _PERIOD_DATE.search(sentence) is not None
    if not has_period and not _DATE.search(sentence):
        return []
    deadline = _DEADLINE_DATE.search(sentence)
    if deadline and len(deadline["what"].split()) <= 10:
        return [("deadline", _question("Qual é o prazo", deadline["what"]))]
    event = _EVENT.match(sentence)
    subject = event["subj"] if event else ""
    if has_period and event and len(subject.split()) <= 8 and _good_subject(subject.split(" ", 1)[1]):
        plural = subject.split()[0].lower() in {"os", "as"}
        return [("when", _question("Quando são" if plural else "Quando é", _lower_first(subject)))]
    return []


_PURPOSE = re.compile(r"^(?P<subj>[^,;:]{2,80}?),?(?: [^,;:]{0,40},)? (?:tem|têm|terá|terão) (?:como|por) "
                      r"(?:objetivo|finalidade|função|missão)(?: \w+)?,? (?P<rest>\w.{5,})$")
_COMPOSED = re.compile(r"^(?P<subj>[^,;:]{2,80}?) (?P<verb>é|são|será|serão) (?P<part>compost|formad|constituíd)"
                       r"(?P<end>[oa]s?) (?:por|de) ")
_CONSISTS = re.compile(r"^(?P<subj>[^,;:]{2,80}?) consiste(?:m)? (?:em|no|na|nos|nas) ")
_ACRONYM = re.compile(r"(?P<long>[A-ZÀ-Ú][\wÀ-ú]+(?: (?:de|da|do|das|dos|e|em|para|a|o|à|ao|às|aos)?(?: )?"
                      r"[A-ZÀ-Ú][\wÀ-ú]+){1,9}) "
                      r"(?:\(|– |- )(?P<acr>[A-Z][A-Za-z]{1,9})(?:\)| –| -)")


def _about(sentence: str) -> list[tuple[str, str]]:
    """Purpose, composition, what a thing consists of, what an acronym stands for."""
    found = []
    match = _PURPOSE.match(sentence)
    if match and _good_subject(match["subj"]):
        found.append(("purpose", _question("Qual é a finalidade", _with_de(_lower_first(match["subj"])))))
    match = _COMPOSED.match(sentence)
    if match and _good_subject(match["subj"]):
        found.append(("composition", _question(f"Como {match['verb']} {match['part']}{match['end']}",
                                               _lower_first(match["subj"]))))
    match = _CONSISTS.match(sentence)
    if match and _good_subject(match["subj"]):
        found.append(("definition", _question("Em que consiste", _lower_first(match["subj"]))))
    match = _ACRONYM.search(sentence)
    if match and match["acr"].isupper() and sum(w[0].isupper() for w in match["long"].split()) >= len(match["acr"]) - 1:
        found.append(("acronym", _question("O que significa a sigla", match["acr"])))
    return found


def questions_for_sentence(sentence: str) -> list[tuple[str, str]]:
    """``(kind, question)`` pairs that ``sentence`` answers; often none."""
    sentence = " ".join(sentence.split())
    if len(sentence) < 20 or sentence.endswith("?"):
        return []
    found: list[tuple[str, str]] = []
    for template in (_definition, _consider, _about, _who, _where, _period, _when, _quantity, _value):
        if template is _when and any(kind in {"when", "deadline"} for kind, _ in found):
            continue  # one date question per sentence
        found.extend((kind, q) for kind, q in template(sentence) if q)
    return found
