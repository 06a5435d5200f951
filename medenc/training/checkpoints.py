"""Which Trainer checkpoint a resumed phase may trust, and what an interrupted one leaves behind.

A kill can land anywhere inside ``Trainer._save_checkpoint``, which writes the model, the optimizer, the
scheduler, the RNG state and finally ``trainer_state.json``, none of them atomically. So a checkpoint counts
as complete only when every one of those files is there and ``trainer_state.json`` parses and names the
checkpoint's own step. Incomplete ones are set aside (never deleted: the user may want to look), so that
neither the Trainer's resume nor its rotation picks them up.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import datetime, timezone
from pathlib import Path

from medenc.core.layout import WEIGHTS_FILE

log = logging.getLogger("medenc.training")

_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
# What a checkpoint needs for a bit-exact resume; trainer_state.json is written last.
REQUIRED = (WEIGHTS_FILE, "optimizer.pt", "scheduler.pt", "rng_state.pth", "trainer_state.json")
SET_ASIDE_DIR = "incomplete"


def _step(path: Path) -> int | None:
    m = _CHECKPOINT.match(path.name)
    return int(m.group(1)) if m and path.is_dir() else None


def why_incomplete(folder: Path) -> str | None:
    """None when ``folder`` is a complete checkpoint, else what is wrong with it."""
    missing = [name for name in REQUIRED if not (folder / name).is_file()]
    if missing:
        return f"missing {', '.join(missing)}"
    try:
        state = json.loads((folder / "trainer_state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return f"unreadable trainer_state.json ({exc})"
    if state.get("global_step") != _step(folder):
        return f"trainer_state.json says step {state.get('global_step')}"
    return None


def last_complete_checkpoint(ckpt_dir: Path) -> str | None:
    """The newest complete checkpoint under ``ckpt_dir`` (as a string for the Trainer), or None.

    Incomplete checkpoints newer than it, and older ones too, are moved to ``ckpt_dir/incomplete/``.
    """
    if not ckpt_dir.is_dir():
        return None
    found = sorted((s, p) for p in ckpt_dir.iterdir() if (s := _step(p)) is not None)
    best = None
    for _, folder in reversed(found):
        problem = why_incomplete(folder)
        if problem is None:
            best = best or folder
            continue
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")
        target = ckpt_dir / SET_ASIDE_DIR / f"{folder.name}-{stamp}"
        target.parent.mkdir(exist_ok=True)
        folder.rename(target)
        log.warning(
            "checkpoint %s is incomplete (%s), probably cut by a kill: set aside as %s",
            folder,
            problem,
            target,
        )
    return str(best) if best else None
