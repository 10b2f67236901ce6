"""Find llama.cpp's server binary, or build it once from llama.cpp's own sources; and keep
llama.cpp's checkpoint converter (convert_hf_to_gguf.py) from the same sources.

No package on PyPI ships `llama-server`, llama.cpp's OpenAI-compatible server with parallel
slots and continuous batching. Its sources do reach PyPI, vendored inside the llama-cpp-python
sdist (the version pinned here and in pyproject's test extra), so this builds the one target
from them with cmake, statically linked, into the tools cache (~8 minutes on 2 cores, once).
Order of preference: a path the recipe names, $AUTOALIGN_LLAMA_SERVER, `llama-server` on PATH,
the cached build, a new build. The converter (the script, its `conversion` package and the
`gguf-py` it imports) is copied next to the binary, for checkpoints no bundled GGUF describes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from autoalign.engines import EngineError
from autoalign.models.bundled import cache_root

LLAMA_CPP_PYTHON = "0.3.36"
"""The llama-cpp-python sdist whose vendored llama.cpp is built (same pin as the test extra)."""
BINARY = "llama-server"
CMAKE_FLAGS = (
    "-DCMAKE_BUILD_TYPE=Release",
    "-DBUILD_SHARED_LIBS=OFF",  # one self-contained binary
    "-DGGML_NATIVE=ON",  # built where it runs: use every instruction the CPU has
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_SERVER=ON",
    "-DLLAMA_BUILD_UI=OFF",  # the web UI is fetched from the internet; the API needs none of it
    "-DLLAMA_USE_PREBUILT_UI=OFF",
    "-DLLAMA_OPENSSL=OFF",
)


class EngineUnavailable(EngineError):
    """The engine cannot run here; the message says what to install or set."""


def tools_dir() -> Path:
    """Where built tools live: $AUTOALIGN_TOOLS_DIR, else <cache>/tools."""
    return Path(os.environ.get("AUTOALIGN_TOOLS_DIR") or cache_root() / "tools")


def cached_binary() -> Path:
    return tools_dir() / f"llama.cpp-{LLAMA_CPP_PYTHON}" / BINARY


def converter_dir() -> Path:
    return tools_dir() / f"llama.cpp-{LLAMA_CPP_PYTHON}" / "convert"


CONVERTER_FILES = ("convert_hf_to_gguf.py", "conversion", "gguf-py", "LICENSE")


def installed_server(configured: str | None = None) -> Path | None:
    """The llama-server at hand without building one, if any."""
    for candidate, setting in (
        (configured, "model.llamacpp.server"),
        (os.environ.get("AUTOALIGN_LLAMA_SERVER"), "$AUTOALIGN_LLAMA_SERVER"),
    ):
        if candidate:
            path = Path(candidate).expanduser()
            if not (path.is_file() and os.access(path, os.X_OK)):
                raise EngineUnavailable(f"{setting}: {path} is not an executable file")
            return path
    if on_path := shutil.which(BINARY):
        return Path(on_path)
    return cached_binary() if cached_binary().exists() else None


def server_binary(configured: str | None = None, log=print) -> Path:
    """The llama-server to run, building it if there is none."""
    return installed_server(configured) or build_server(log)


def build_server(log=print) -> Path:
    """Download the pinned sources, build llama-server, install it atomically into the cache."""
    for tool in ("cmake", "c++"):
        if shutil.which(tool) is None:
            raise EngineUnavailable(
                f"building llama.cpp's server needs {tool} (e.g. `apt install cmake g++`); or point "
                "model.llamacpp.server / $AUTOALIGN_LLAMA_SERVER at a llama-server binary"
            )
    target = cached_binary()
    target.parent.mkdir(parents=True, exist_ok=True)
    log(f"[autoalign] building llama.cpp's server from llama-cpp-python {LLAMA_CPP_PYTHON}'s sources (once, ~8 min)")
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".build.") as tmp:
        work = Path(tmp)
        source = _fetch_sources(work)
        _install_converter(source)
        build = work / "build"
        log_path = target.parent / "build.log"
        jobs = str(os.cpu_count() or 2)
        with log_path.open("w") as build_log:
            for cmd in (
                ["cmake", "-S", str(source), "-B", str(build), *CMAKE_FLAGS],
                ["cmake", "--build", str(build), "--target", BINARY, "-j", jobs],
            ):
                if subprocess.run(cmd, stdout=build_log, stderr=subprocess.STDOUT).returncode != 0:
                    raise EngineUnavailable(f"building llama-server failed ({' '.join(cmd[:3])} ...); see {log_path}")
        built = build / "bin" / BINARY
        if not built.exists():
            raise EngineUnavailable(f"the build finished without {built}; see {log_path}")
        os.replace(built, target)  # last: a crash never leaves a half-built binary that looks finished
    log(f"[autoalign] llama-server ready: {target}")
    return target


def installed_converter() -> Path | None:
    script = converter_dir() / CONVERTER_FILES[0]
    return script if script.exists() else None


def converter_script(log=print) -> Path:
    """llama.cpp's convert_hf_to_gguf.py from the pinned sources, fetched once into the cache."""
    if (script := installed_converter()) is not None:
        return script
    converter_dir().parent.mkdir(parents=True, exist_ok=True)
    log(f"[autoalign] fetching llama.cpp's converter from llama-cpp-python {LLAMA_CPP_PYTHON}'s sources (once)")
    with tempfile.TemporaryDirectory(dir=converter_dir().parent, prefix=".fetch.") as tmp:
        _install_converter(_fetch_sources(Path(tmp)))
    return converter_dir() / CONVERTER_FILES[0]


def _install_converter(source: Path) -> None:
    """Copy the converter out of the extracted sources, atomically (a directory renamed into place)."""
    if converter_dir().exists():
        return
    staging = Path(tempfile.mkdtemp(dir=converter_dir().parent, prefix=".convert."))
    for name in CONVERTER_FILES:
        (shutil.copytree if (source / name).is_dir() else shutil.copy2)(source / name, staging / name)
    try:
        os.replace(staging, converter_dir())
    except OSError:  # another process installed it first
        shutil.rmtree(staging, ignore_errors=True)


def _fetch_sources(work: Path) -> Path:
    """The sdist's vendor/llama.cpp directory, extracted under work."""
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--no-binary",
        ":all:",
        "--quiet",
        f"llama-cpp-python=={LLAMA_CPP_PYTHON}",
        "-d",
        str(work),
    ]
    result = subprocess.run(cmd, capture_output=True, text=True)
    archives = sorted(work.glob("llama_cpp_python-*.tar.gz"))
    if result.returncode != 0 or not archives:
        raise EngineUnavailable(
            f"could not download llama-cpp-python=={LLAMA_CPP_PYTHON}'s sources with pip:\n{result.stderr[-2000:]}"
        )
    prefix = f"llama_cpp_python-{LLAMA_CPP_PYTHON}/vendor/llama.cpp/"
    with tarfile.open(archives[0]) as archive:
        members = [m for m in archive.getmembers() if m.name.startswith(prefix)]
        archive.extractall(work, members=members, filter="data")
    return work / prefix
