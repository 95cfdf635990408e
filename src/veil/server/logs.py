"""Logging setup: one file under the data dir plus stderr.

What is logged: method, path, status, handles and device ids. Never bodies, ciphertext,
tokens, passwords or keys: no code here logs request or response content, and uvicorn's
access log (which would print query strings) is replaced by AccessLogMiddleware.
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from pathlib import Path
from typing import Any

__all__ = ["setup_logging"]

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _NoDetailFormatter(logging.Formatter):
    """Tracebacks keep their frames but drop the exception's text, which may quote data."""

    def formatException(self, ei: Any) -> str:
        etype, _, tb = ei
        frames = "".join(traceback.format_tb(tb)[-8:])
        name = etype.__name__ if etype is not None else "Exception"
        return f"Traceback (most recent call last):\n{frames}{name} (detail withheld)"


class _JsonFormatter(_NoDetailFormatter):
    """One JSON object per line: ts, level, logger, msg (and exc, frames only). The message is
    the same content-free text the plain format carries."""

    def format(self, record: logging.LogRecord) -> str:
        out = {"ts": round(record.created, 3), "level": record.levelname, "logger": record.name,
               "msg": record.getMessage()}
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def setup_logging(log_path: Path, level: int = logging.INFO, *, json_lines: bool = False) -> None:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    formatter: logging.Formatter = _JsonFormatter() if json_lines else _NoDetailFormatter(FORMAT)
    file_handler = logging.FileHandler(log_path, encoding="utf-8")
    stderr_handler = logging.StreamHandler(sys.stderr)
    for h in (file_handler, stderr_handler):
        h.setFormatter(formatter)
    for name in ("veil", "uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers = [file_handler, stderr_handler]
        logger.setLevel(level)
        logger.propagate = False
    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.getLogger("uvicorn.access").disabled = True
