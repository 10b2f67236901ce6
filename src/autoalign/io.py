"""Reading and writing data files: JSONL and Parquet in, JSONL out, written atomically.

Errors name the file, the line and the field, so a user can fix the data without reading code.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any


class DataError(ValueError):
    """Bad input data; the message names the file, line and field."""


def iter_jsonl(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line_number, row) for each non-blank line; line numbers start at 1."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found")
    with path.open(encoding="utf-8") as f:
        for line_no, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{path}:{line_no}: invalid JSON ({e.msg} at column {e.colno})") from e
            if not isinstance(row, dict):
                raise DataError(f"{path}:{line_no}: expected a JSON object, got {type(row).__name__}")
            yield line_no, row


def iter_rows(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Rows of a JSONL or Parquet file; Parquet rows are numbered from 1 like lines."""
    path = Path(path)
    if path.suffix == ".parquet":
        if not path.exists():
            raise DataError(f"{path}: file not found")
        import pyarrow.parquet as pq

        for i, row in enumerate(pq.read_table(path).to_pylist(), start=1):
            yield i, row
    else:
        yield from iter_jsonl(path)


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    return [row for _, row in iter_jsonl(path)]


def require_field(path: Path | str, line_no: int, row: dict[str, Any], name: str, kind: type) -> Any:
    if name not in row:
        raise DataError(f"{path}:{line_no}: missing field '{name}'")
    value = row[name]
    if not isinstance(value, kind):
        raise DataError(
            f"{path}:{line_no}: field '{name}' must be {kind.__name__}, got {type(value).__name__}"
        )
    return value


_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write via a temporary file in the same directory and rename, so readers never see
    a half-written file, even if the process dies mid-write."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes files private; give them the usual mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_jsonl(path: str | Path, rows: Iterable[dict[str, Any]]) -> int:
    lines = [json.dumps(row, ensure_ascii=False) for row in rows]
    atomic_write_text(path, "".join(line + "\n" for line in lines))
    return len(lines)


def write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def append_jsonl(path: str | Path, rows: Iterable[dict[str, Any]]) -> None:
    """Append finished items to a partial file; flushed and fsynced so a crash keeps them."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())


def read_partial_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a partial file written by append_jsonl; a torn last line (crash mid-write) is
    dropped because that item will simply be redone."""
    path = Path(path)
    if not path.exists():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return rows
