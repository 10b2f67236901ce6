"""Reading and writing data files: JSONL and Parquet in, JSONL out, written atomically.

Errors name the file, the line and the field, so a user can fix the data without reading code.
"""

from __future__ import annotations

import errno
import json
import os
import re
import secrets
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


class DataError(ValueError):
    """Bad input data; the message names the file, line and field."""


class StorageError(OSError):
    """A write the disk refused (full, read-only, over quota or a size limit); the message names
    the path and the free space. Whatever was written before is still valid: every write is
    atomic, so re-running the same command after freeing space resumes where it stopped."""

    def __str__(self) -> str:
        return str(self.strerror)


STORAGE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG, errno.EIO}
# Libraries that write from native code (safetensors, torch's zip writer) raise their own error
# types; these are the OS messages they carry for the same errnos.
STORAGE_MESSAGES = (
    "No space left on device",
    "Read-only file system",
    "Disk quota exceeded",
    "File too large",
    "StorageFull",
    "ReadOnlyFilesystem",
    "FileTooLarge",
)


def free_space(path: str | Path) -> str:
    """Free space on the filesystem holding path (its nearest existing ancestor), for messages."""
    probe = Path(path).absolute()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        free = shutil.disk_usage(probe).free
    except OSError:
        return "free space unknown"
    if free < 1024**2:
        return f"{free} bytes free on {probe}"
    return f"{free / 1024**2:.1f} MB free on {probe}" if free < 1024**3 else f"{free / 1024**3:.1f} GB free on {probe}"


def is_storage_failure(err: BaseException) -> bool:
    if isinstance(err, OSError) and err.errno in STORAGE_ERRNOS:
        return True
    return any(m in str(err) for m in STORAGE_MESSAGES)


@contextmanager
def storage_errors(path: str | Path) -> Iterator[None]:
    """Turns a refused write under path into a StorageError that names it and the free space."""
    try:
        yield
    except StorageError:
        raise
    except Exception as e:
        if not is_storage_failure(e):
            raise
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e).splitlines()[0][:200]
        raise StorageError(
            e.errno if isinstance(e, OSError) else errno.EIO,
            f"cannot write {path}: {reason} ({free_space(path)}). What was written before is intact; "
            "free space and run the same command again to resume",
        ) from e


def iter_jsonl(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line_number, row) for each non-blank line; line numbers start at 1."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found")
    with path.open("rb") as f:
        for line_no, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise DataError(
                    f"{path}:{line_no}: not UTF-8 (byte 0x{raw[e.start]:02x} at column {e.start + 1})"
                ) from None
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
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
        except (pa.ArrowException, OSError) as e:
            raise DataError(f"{path}: not a readable Parquet file ({str(e).splitlines()[0]})") from None
        for i, row in enumerate(table.to_pylist(), start=1):
            yield i, row
    else:
        yield from iter_jsonl(path)


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    return [row for _, row in iter_jsonl(path)]


def require_field(path: Path | str, line_no: int, row: dict[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    if name not in row:
        raise DataError(f"{path}:{line_no}: missing field '{name}'")
    value = row[name]
    if not isinstance(value, kind):
        expected = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        raise DataError(f"{path}:{line_no}: field '{name}' must be {expected}, got {type(value).__name__}")
    return value


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write via a temporary file in the same directory and rename, so readers never see
    a half-written file, even if the process dies mid-write. The temporary file is created with
    the usual mode (0o666 less the umask), so the result has it too."""
    path = Path(path)
    with storage_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise


def private_sibling_dir(path: Path) -> Path:
    """A new, empty directory beside `path` to build it in before a rename; created with the
    usual mode (0o777 less the umask), unlike tempfile.mkdtemp's 0o700."""
    with storage_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}"
        tmp.mkdir()
    return tmp


@contextmanager
def replacing_dir(path: Path) -> Iterator[Path]:
    """Yields a new private sibling of `path` to build it in. When the block ends, the old `path`
    is removed and the sibling renamed into its place; if the block fails, the sibling is removed
    and `path` is left as it was. A crash never leaves a partial directory that looks complete."""
    tmp = private_sibling_dir(path)
    try:
        with storage_errors(path):
            yield tmp
        remove_tree(path)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


TEMPORARY_NAME = re.compile(r"^\..+\.[0-9a-f]{12}(\.tmp)?$")
"""What atomic_write_text and private_sibling_dir name their temporaries: `.NAME.<12 hex>[.tmp]`."""


def remove_tree(path: Path) -> None:
    """Delete a directory so that it disappears at once: renamed to a temporary name first, so a
    crash midway leaves a temporary (swept on resume), never a half-deleted directory."""
    if not path.exists():
        return
    doomed = path.parent / f".{path.name}.{secrets.token_hex(6)}"
    os.replace(path, doomed)
    shutil.rmtree(doomed, ignore_errors=True)


def sweep_temporaries(root: Path) -> int:
    """Remove what interrupted writes left under root (their temporaries); only the run's one
    writer may call this (runlock.py), as a live writer's temporaries look the same."""
    removed = 0
    for parent, dirs, files in os.walk(root):
        for name in [d for d in dirs if TEMPORARY_NAME.match(d)]:
            shutil.rmtree(Path(parent) / name, ignore_errors=True)
            dirs.remove(name)
            removed += 1
        for name in [f for f in files if TEMPORARY_NAME.match(f)]:
            (Path(parent) / name).unlink(missing_ok=True)
            removed += 1
    return removed


def write_jsonl(path: str | Path, rows: Iterable[dict[str, Any]]) -> int:
    lines = [json.dumps(row, ensure_ascii=False) for row in rows]
    atomic_write_text(path, "".join(line + "\n" for line in lines))
    return len(lines)


def write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def append_record(path: str | Path, record: dict[str, Any]) -> None:
    """Append one record as one line, in one write, then fsync: a crash leaves either the whole
    line or a torn tail that read_records cuts off."""
    data = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
    path = Path(path)
    with storage_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            start = os.lseek(fd, 0, os.SEEK_END)
            try:
                _write_all(fd, data)
                os.fsync(fd)
            except OSError:
                os.ftruncate(fd, start)  # a refused append leaves no torn line behind
                raise
        finally:
            os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """The complete records of a file written by append_record. Everything from the first
    incomplete or unreadable line on (a crash mid-write: a torn line, a cut multi-byte
    character) is truncated away, so the next append starts on a clean line."""
    path = Path(path)
    if not path.exists():
        return []
    data = path.read_bytes()
    records, good_end, start = [], 0, 0
    while (end := data.find(b"\n", start)) != -1:
        try:
            record = json.loads(data[start:end].decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            break
        if not isinstance(record, dict):
            break
        records.append(record)
        good_end = start = end + 1
    if good_end < len(data):
        with path.open("r+b") as f:
            f.truncate(good_end)
            f.flush()
            os.fsync(f.fileno())
    return records
