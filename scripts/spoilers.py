"""What a "Predict first" question's answer prints, kept so that a test can find it elsewhere.

A cell tagged ``answer`` measures what the markdown cell above it asks the learner to predict
("**Predict first.**"). In a learner's copy it keeps no stored output. Before that output is
cleared, :func:`fingerprint` records the numbers it printed, each as a short SHA-256 digest, in
the cell's metadata (``answer_numbers_sha256``). A test (tests/test_spoilers.py) then checks
that no later stored output, and no later markdown outside a collapsed ``<details>`` block,
prints or states one of those numbers. The digests do not give the numbers away to a learner
who opens the file as text.

A number is a decimal (``0.905``, ``15.7``), a percentage (``73 %``, ``25.5%``) or an integer
of three or more digits (``491``).
"""

from __future__ import annotations

import hashlib
import re

NUMBER = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?\s?%|\d+\.\d+|\d{3,})(?![\w])")
DETAILS = re.compile(r"<details>.*?</details>", re.DOTALL)
KEY = "answer_numbers_sha256"


def numbers(text: str) -> set[str]:
    """The numbers in ``text``, written one way (``73 %`` and ``73%`` are one number)."""
    return {m.replace(" ", "") for m in NUMBER.findall(text)}


def digest(number: str) -> str:
    return hashlib.sha256(number.encode()).hexdigest()[:16]


def output_text(cell) -> str:
    """The text a code cell's stored outputs show (streams, and text/plain or text/markdown)."""
    parts = []
    for out in cell.get("outputs", []):
        if "text" in out:
            parts.append("".join(out["text"]))
        data = out.get("data", {})
        for kind in ("text/plain", "text/markdown", "text/html"):
            if kind in data:
                parts.append("".join(data[kind]))
        if "evalue" in out:
            parts.append(out["evalue"])
    return "\n".join(parts)


def visible_markdown(source: str) -> str:
    """A markdown cell's text with its collapsed ``<details>`` blocks taken out."""
    return DETAILS.sub("", source)


def fingerprint(nb) -> None:
    """Record, in each answer cell's metadata, the digests of the numbers its outputs print."""
    for cell in nb.cells:
        if cell.cell_type == "code" and "answer" in cell.metadata.get("tags", []):
            cell.metadata[KEY] = sorted({digest(n) for n in numbers(output_text(cell))})
