"""Synthetic training rows of controlled token length, cut from real medical texts.

Texts come from the phase's prepared training set (or, when it is missing, a built-in list of medical
sentences), are tokenized with the model's tokenizer, joined and cut to lengths between
``seq_len * (1 - spread)`` and ``seq_len``: controlled padding, real words.
"""

from __future__ import annotations

import random
from typing import Any

from medenc.core.errors import MedencError
from medenc.data import load_split
from medenc.training.phase_specs import PHASES

# Used only when the prepared data cannot be read (said so in the output).
BUILTIN_TEXTS = [
    "What are the symptoms of type 2 diabetes?",
    "Increased thirst, frequent urination, fatigue and blurred vision are common early signs of diabetes.",
    "How is hypertension diagnosed?",
    "High blood pressure is diagnosed when repeated readings are at or above 130/80 mmHg.",
    "Metformin lowers blood glucose by reducing hepatic glucose production.",
    "What causes iron deficiency anemia?",
    "Chronic blood loss, poor dietary intake and malabsorption can all lead to iron deficiency.",
    "Asthma is a chronic inflammatory disease of the airways that causes wheezing and shortness of breath.",
    "Inhaled corticosteroids are the mainstay of long-term asthma control.",
    "What is the prognosis of amyotrophic lateral sclerosis?",
    "Most people with ALS die from respiratory failure within three to five years of symptom onset.",
    "Myocardial infarction occurs when blood flow to part of the heart muscle is blocked.",
    "Chest pain radiating to the left arm, sweating and nausea may indicate a heart attack.",
    "Is there a vaccine for hepatitis B?",
    "The hepatitis B vaccine is given as a series of two, three or four shots.",
    "Osteoporosis makes bones weak and brittle, so that a fall or mild stress can cause a fracture.",
    "Calcium and vitamin D supplements help maintain bone density in older adults.",
    "What are the side effects of chemotherapy?",
    "Nausea, hair loss, fatigue and infections are frequent side effects of chemotherapy.",
    "Chronic kidney disease is often caused by diabetes and high blood pressure.",
    "Patients with end-stage renal disease need dialysis or a kidney transplant.",
    "How long does it take to recover from pneumonia?",
    "Community-acquired pneumonia is usually treated with antibiotics such as amoxicillin or macrolides.",
    "Migraine is a neurological condition with recurrent headaches, often with nausea and light sensitivity.",
    "Triptans relieve migraine attacks by narrowing blood vessels in the brain.",
    "Parkinson disease is a progressive disorder that affects movement, causing tremor and rigidity.",
    "Levodopa is converted to dopamine in the brain and improves motor symptoms.",
    "What is the difference between a CT scan and an MRI?",
    "Gestational diabetes develops during pregnancy and usually resolves after delivery.",
    "Can a urinary tract infection spread to the kidneys?",
    "Untreated bladder infections may ascend and cause pyelonephritis with fever and flank pain.",
    "Atrial fibrillation increases the risk of stroke, so anticoagulation is often recommended.",
]


def text_pool(phase: int) -> tuple[list[str], str]:
    """Distinct texts of the phase's prepared training set (else built-in ones), and their origin."""
    spec = PHASES[phase]
    try:
        ds = load_split("train", spec.data_set)
    except MedencError as exc:
        return list(BUILTIN_TEXTS), f"built-in medical sentences (prepared data missing: {exc})"
    cols = [c for c in spec.columns if c != "score"]
    texts = list(dict.fromkeys(t for c in cols for t in ds[c] if t))
    return texts, f"prepared train/{spec.data_set} ({len(texts)} distinct texts)"


def controlled_texts(
    tokenizer: Any, pool: list[str], count: int, seq_len: int, spread: float, seed: int
) -> list[str]:
    """``count`` texts of ``seq_len * (1 - spread)`` to ``seq_len`` tokens (special tokens included).

    Real texts are tokenized, joined into one token stream and cut into pieces of random target length, then
    decoded; so the token lengths are controlled while the words stay real.
    """
    rng = random.Random(seed)
    order = list(pool)
    rng.shuffle(order)
    stream: list[int] = []
    for text in order:
        stream.extend(tokenizer(text, add_special_tokens=False)["input_ids"])
        if len(stream) > count * seq_len:
            break
    if not stream:
        raise ValueError("the text pool is empty")
    content = max(1, seq_len - 2)  # room for the two special tokens the tokenizer adds
    lo = max(1, round(content * (1 - spread)))
    out, pos = [], rng.randrange(len(stream))
    for _ in range(count):
        n = rng.randint(lo, content)
        ids = [stream[(pos + i) % len(stream)] for i in range(n)]
        pos = (pos + n) % len(stream)
        out.append(tokenizer.decode(ids, clean_up_tokenization_spaces=True).strip() or "empty")
    return out


def synthetic_rows(
    phase: int, tokenizer: Any, pool: list[str], rows: int, seq_len: int, spread: float, seed: int
) -> dict[str, list[Any]]:
    """Columns of the phase's data set (score random in [0, 1]), texts of controlled length."""
    cols: dict[str, list[Any]] = {}
    for i, col in enumerate(PHASES[phase].columns):
        if col == "score":
            rng = random.Random(seed)
            cols[col] = [rng.random() for _ in range(rows)]
        else:
            cols[col] = controlled_texts(tokenizer, pool, rows, seq_len, spread, seed * 31 + i)
    return cols


def make_dataset(columns: dict[str, list[Any]]) -> Any:
    """A ``datasets.Dataset``, as in training (on a machine without it, carry its wheel: docs/bench.md)."""
    from datasets import Dataset

    return Dataset.from_dict(columns)
