"""COVID-QA: questions written by biomedical experts over the full text of CORD-19 research articles, each
with its answer span (Möller et al., 2020; training pairs).

``200421_covidQA.json`` is SQuAD format: 96 articles, each one ``paragraphs`` entry whose ``context`` is the
article's whole text (~30k characters: title, link, authors, abstract, body) and whose ``qas`` hold the
questions, each with one answer (``text``, character ``answer_start``). Upstream's offsets are not all exact:
for 221 answers the text sits a few characters from ``answer_start`` (the nearest occurrence is taken), and 8
answer texts lost a character the context keeps (a "<" stripped upstream; their ``answer_start`` is taken as
it is). Both are counted in the manifest's ``info``.

Each question is one phase-2 pair, question -> the passage around its answer (row source ``covid_qa``): the
passage starts at the sentence holding the answer and runs :data:`WINDOW_WORDS` words (further only to finish
the answer), so that a 96- to 128-token model input reads the answer. A question asked of more than one
article ("what is the conclusion of this report?", "what are coronaviruses?": 5 questions) names no one
passage and is left out (counted).
Validation is drawn by article, in the ``passages`` group with the Cochrane pairs.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from medenc.core import layout
from medenc.core.errors import DataError
from medenc.data import leakage
from medenc.data.parsing import SkipLog, normalise, read_json
from medenc.data.source import Pin, Rows, Source, SourceInfo, row

FILE = "200421_covidQA.json"
WINDOW_WORDS = 100  # about 130 tokens: the GPU recipe's 128-token inputs read the answer and what follows it
# The end of a sentence before the answer: a stop and a space, or a paragraph break.
_SENTENCE_END = re.compile(r"[.!?]\s+|\n\s*\n")


@dataclass(frozen=True)
class Question:
    """One expert question with the article it was asked of and where its answer is in that article."""

    id: int
    article: int  # the article's document_id
    question: str
    answer: str
    start: int  # the answer's character offset in the article's text, as located (see the module doc)
    located: str  # "exact", "nearest" (upstream's offset was off) or "as given" (the text is not verbatim)


@dataclass(frozen=True)
class CovidQa:
    """The articles' texts by document_id, and every question."""

    articles: dict[int, str]
    questions: list[Question]

    def __len__(self) -> int:
        return len(self.questions)


def locate(context: str, answer: str, start: int) -> tuple[int, str]:
    """Where ``answer`` is in ``context``: at ``start``, else its occurrence nearest ``start``, else
    ``start`` itself (the text is not verbatim in the context)."""
    if context[start : start + len(answer)] == answer:
        return start, "exact"
    found = [m.start() for m in re.finditer(re.escape(answer.strip()), context)] if answer.strip() else []
    if found:
        return min(found, key=lambda i: abs(i - start)), "nearest"
    return start, "as given"


def passage(context: str, start: int, answer: str) -> str:
    """The passage around an answer: from the start of its sentence, :data:`WINDOW_WORDS` words or up to the
    answer's end, whichever is further; whitespace collapsed."""
    begin = 0
    for m in _SENTENCE_END.finditer(context, 0, start):
        begin = m.end()
    words = context[begin:].split()
    need = len(context[begin : start + len(answer)].split())
    return " ".join(words[: max(WINDOW_WORDS, need)])


T = TypeVar("T")


def _field(obj: object, key: str, kind: type[T], path: Path, where: str | None) -> T:
    """``obj[key]``, which must be a ``kind``; else a DataError naming the element."""
    value = obj.get(key) if isinstance(obj, dict) else None
    if not isinstance(value, kind) or isinstance(value, bool):
        raise DataError(path, where, f"{key!r}: a {kind.__name__} (SQuAD format)", repr(value)[:80])
    return value


def _one(items: list, path: Path, where: str, what: str) -> object:
    """The single element of ``items`` (an article's one paragraphs entry, a question's one answer)."""
    if len(items) != 1:
        raise DataError(path, where, what, f"{len(items)} entries")
    return items[0]


def _question(qa: object, doc: int, context: str, path: Path, at: str) -> Question:
    """One ``qas`` element, its answer located in the article's ``context``."""
    answer = _one(_field(qa, "answers", list, path, at), path, at, "one answer")
    text = _field(answer, "text", str, path, f"{at}.answers[0]")
    offset = _field(answer, "answer_start", int, path, f"{at}.answers[0]")
    if not 0 <= offset < len(context):
        raise DataError(path, f"{at}.answers[0]", "answer_start inside the context", str(offset))
    start, located = locate(context, text, offset)
    question = normalise(_field(qa, "question", str, path, at), path, f"{at}, question")
    return Question(_field(qa, "id", int, path, at), doc, question, text, start, located)


def read(folder: Path, skips: SkipLog | None = None) -> CovidQa:
    """Every article and question of the SQuAD file; an element of another shape is a DataError."""
    path = folder / FILE
    data = read_json(path)
    articles: dict[int, str] = {}
    questions = []
    for a, article in enumerate(_field(data, "data", list, path, None)):
        paragraphs = _field(article, "paragraphs", list, path, f"data[{a}]")
        para = _one(paragraphs, path, f"data[{a}]", "one paragraphs entry (the article's text)")
        where = f"data[{a}].paragraphs[0]"
        doc = _field(para, "document_id", int, path, where)
        context = _field(para, "context", str, path, where)
        if doc in articles:
            raise DataError(path, where, "each document_id once", f"{doc} again")
        articles[doc] = context
        qas = _field(para, "qas", list, path, where)
        questions += [_question(qa, doc, context, path, f"{where}.qas[{k}]") for k, qa in enumerate(qas)]
    return CovidQa(articles, questions)


def training_rows(data: CovidQa, skips: SkipLog) -> Rows:
    """Question -> passage pairs; a question asked of several articles is left out (counted)."""
    articles_of: dict[str, set[int]] = {}
    for q in data.questions:
        articles_of.setdefault(leakage.key(q.question), set()).add(q.article)
    rows = []
    for q in data.questions:
        if len(articles_of[leakage.key(q.question)]) > 1:
            skips.add("covid_qa: question asked of several articles (generic)")
            continue
        text = passage(data.articles[q.article], q.start, q.answer)
        rows.append(row(layout.PAIRS, "covid_qa", str(q.article), q.question, text))
    return {layout.PAIRS: rows}


def manifest_info(data: CovidQa) -> dict[str, object]:
    """The manifest's COVID-QA counts: articles, questions, and how their answers were located."""
    located = Counter(q.located for q in data.questions)
    return {
        "covid_qa_articles": len(data.articles),
        "covid_qa_questions": len(data.questions),
        "covid_qa_answers_nearest_offset": located["nearest"],
        "covid_qa_answers_offset_as_given": located["as given"],
    }


SOURCE = Source(
    info=SourceInfo(
        folder="covid_qa",
        row_sources=("covid_qa",),
        name="COVID-QA",
        license="Apache-2.0",
        role="train+validation: pairs (expert question->the passage of a CORD-19 article around its answer)",
        url="https://github.com/deepset-ai/COVID-QA",
        commit="fb2eb5e249618457e5359806601086c635c8eb8f",
        attribution=(
            "Möller et al., 2020, COVID-QA: A Question Answering Dataset for COVID-19 (Apache-2.0, deepset)"
        ),
        bibtex="""@inproceedings{moller2020covidqa,
  title = {{COVID-QA}: A Question Answering Dataset for {COVID-19}},
  author = {M{\\"o}ller, Timo and Reina, Anthony and Jayakumar, Raghavan and Pietsch, Malte},
  booktitle = {Proceedings of the 1st Workshop on NLP for COVID-19 at ACL 2020},
  year = {2020}
}""",
    ),
    files=(FILE, "LICENSE"),
    # @ fb2eb5e24961 (data/question-answering/)
    pins={
        FILE: Pin("d67faf30ce7b642da27afe95a78d059d73fad33898a1df6a827fb4fa2511dc86", 15561),
        "LICENSE": Pin("c71d239df91726fc519c6eb72d318ec65820627232b2f796219e87dcf35d0ab4", None),
    },
    read=read,
    training_rows=training_rows,
    manifest_info=manifest_info,
    validation_group="passages",
)
