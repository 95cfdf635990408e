"""The operator's word list: regular messages containing one of its words are flagged for review.

One word (or phrase) per line, matched case-insensitively as a whole word: "ban" flags
"BAN it" and "ban!" but not "banana". Blank lines and lines starting with "#" are skipped.
Never applied to secret envelopes: the server cannot read them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

__all__ = ["WordList"]


class WordList:
    def __init__(self, words: Iterable[str]) -> None:
        cleaned = sorted({w.strip().casefold() for w in words
                          if w.strip() and not w.strip().startswith("#")}, key=len, reverse=True)
        self.words = tuple(cleaned)
        self._pattern = (re.compile(r"(?<!\w)(?:" + "|".join(re.escape(w) for w in cleaned) + r")(?!\w)",
                                    re.IGNORECASE) if cleaned else None)

    @classmethod
    def load(cls, path: Path) -> WordList:
        return cls(path.read_text(encoding="utf-8").splitlines())

    def matches(self, text: str) -> bool:
        return self._pattern is not None and self._pattern.search(text) is not None
