"""Export a Hugging Face checkpoint to GGUF for llama.cpp.

Two ways. export_gguf reuses a template GGUF's metadata: training changes weights, never the
tokenizer or the architecture, so everything a GGUF holds besides tensors (hyper-parameters,
vocabulary, merges, chat template) is copied from a GGUF of the same model, the bundled model's
own file, and only the tensors are written anew, named and laid out as llama.cpp expects them.
That layout is the inverse of what transformers undoes when it loads a GGUF
(transformers/modeling_gguf_pytorch_utils.py), which is what the round-trip test checks: Llama's
q/k rows are interleaved per head for llama.cpp's rotary embedding, and Gemma's norm weights are
stored as 1 + w. convert_gguf runs llama.cpp's own converter (convert_hf_to_gguf.py, from the
sources the server is built from) for any other checkpoint: it knows every architecture and
tokenizer llama.cpp serves.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import gguf
import numpy as np
from safetensors.numpy import load_file

from autoalign.engines import EngineError

OUTTYPES = {
    "f32": (gguf.GGMLQuantizationType.F32, gguf.LlamaFileType.ALL_F32),
    "f16": (gguf.GGMLQuantizationType.F16, gguf.LlamaFileType.MOSTLY_F16),
    "bf16": (gguf.GGMLQuantizationType.BF16, gguf.LlamaFileType.MOSTLY_BF16),
    "q8_0": (gguf.GGMLQuantizationType.Q8_0, gguf.LlamaFileType.MOSTLY_Q8_0),
}
NORMS_STORED_PLUS_ONE = {"gemma", "gemma2", "gemma3"}
ROPE_INTERLEAVED = {"llama"}


class ExportError(EngineError):
    """The checkpoint does not match the template (another architecture or size)."""


def hf_state_dict(model_dir: Path) -> dict[str, np.ndarray]:
    """All tensors of a safetensors checkpoint (one file or shards), as float32 numpy arrays."""
    index = model_dir / "model.safetensors.index.json"
    files = (
        sorted(set(json.loads(index.read_text())["weight_map"].values())) if index.exists() else ["model.safetensors"]
    )
    state: dict[str, np.ndarray] = {}
    for name in files:
        if not (model_dir / name).exists():
            raise ExportError(f"{model_dir / name}: missing (export needs a safetensors checkpoint)")
        state.update(load_file(model_dir / name))
    return {k: v.astype(np.float32) for k, v in state.items()}


def interleave_rope_rows(weight: np.ndarray, n_heads: int) -> np.ndarray:
    """HF keeps each head's rotary pairs as two halves; llama.cpp wants them interleaved."""
    rows_per_half = weight.shape[0] // n_heads // 2
    return weight.reshape(n_heads, 2, rows_per_half, *weight.shape[1:]).swapaxes(1, 2).reshape(weight.shape)


def _ggml_shape(tensor: gguf.ReaderTensor) -> tuple[int, ...]:
    """The template tensor's shape in numpy order (GGUF lists dimensions innermost first)."""
    return tuple(int(d) for d in reversed(tensor.shape.tolist()))


def export_gguf(
    model_dir: Path, template: Path, out: Path, outtype: str = "f16", chat_template: str | None = None
) -> Path:
    """Write model_dir's weights as a GGUF at out (atomically: a temporary file, then renamed).
    chat_template: the one the checkpoint is used with, stored in place of the template file's
    (a base model's GGUF has none, and the server would fall back to another format)."""
    if outtype not in OUTTYPES:
        raise ExportError(f"unknown GGUF outtype {outtype!r} (known: {', '.join(OUTTYPES)})")
    qtype, file_type = OUTTYPES[outtype]
    reader = gguf.GGUFReader(template)
    arch = str(reader.fields["general.architecture"].contents())
    arch_enum = {name: key for key, name in gguf.MODEL_ARCH_NAMES.items()}.get(arch)
    if arch_enum is None:
        raise ExportError(f"{template}: architecture {arch!r} is unknown to the gguf package")
    n_blocks = int(reader.fields[f"{arch}.block_count"].contents())
    names = gguf.get_tensor_name_map(arch_enum, n_blocks)

    state = hf_state_dict(model_dir)
    by_gguf_name: dict[str, np.ndarray] = {}
    for hf_name, array in state.items():
        gguf_name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if gguf_name is not None:
            by_gguf_name[gguf_name] = array

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    writer = gguf.GGUFWriter(tmp, arch)
    try:
        for key, field in reader.fields.items():
            if key.startswith("GGUF.") or key in ("general.architecture", "general.file_type"):
                continue
            if key == gguf.Keys.Tokenizer.CHAT_TEMPLATE and chat_template:
                continue
            sub_type = field.types[1] if field.types[0] == gguf.GGUFValueType.ARRAY else None
            writer.add_key_value(key, field.contents(), field.types[0], sub_type)
        writer.add_file_type(file_type)
        if chat_template:
            writer.add_chat_template(chat_template)
        for tensor in reader.tensors:
            array = _tensor_for(tensor, by_gguf_name, reader, arch, model_dir, template)
            _add(writer, tensor.name, array, qtype)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()
    return out


def _tensor_for(tensor, by_gguf_name, reader, arch: str, model_dir: Path, template: Path) -> np.ndarray:
    name = tensor.name
    base = name.rsplit(".", 1)[0]
    array = by_gguf_name.get(name, by_gguf_name.get(base))
    if array is None:
        raise ExportError(f"{model_dir}: no tensor for {name!r} of the template {template.name} (another model?)")
    if array.shape != _ggml_shape(tensor):
        raise ExportError(
            f"{model_dir}: {name} has shape {array.shape}, the template {template.name} {_ggml_shape(tensor)}"
        )
    if arch in ROPE_INTERLEAVED and (".attn_q." in name or ".attn_k." in name):
        heads_key = f"{arch}.attention.head_count" + ("_kv" if ".attn_k." in name else "")
        array = interleave_rope_rows(array, int(reader.fields[heads_key].contents()))
    if arch in NORMS_STORED_PLUS_ONE and name.endswith("norm.weight"):
        array = array + 1.0
    return array


def _add(writer: gguf.GGUFWriter, name: str, array: np.ndarray, qtype: gguf.GGMLQuantizationType) -> None:
    """Vectors (norms, biases) stay float32, as llama.cpp expects; matrices take the outtype."""
    if array.ndim < 2 or qtype == gguf.GGMLQuantizationType.F32:
        writer.add_tensor(name, np.ascontiguousarray(array, dtype=np.float32))
    elif qtype == gguf.GGMLQuantizationType.F16:
        writer.add_tensor(name, np.ascontiguousarray(array, dtype=np.float16))
    else:
        writer.add_tensor(name, gguf.quants.quantize(np.ascontiguousarray(array), qtype), raw_dtype=qtype)


CHAT_TEMPLATE_FILES = (
    "tokenizer_config.json",
    "chat_template.jinja",
    "chat_template.json",
    "additional_chat_templates",
)


def convert_gguf(
    model_dir: Path,
    converter: Path,
    out: Path,
    outtype: str = "f16",
    chat_template: str | None = None,
    log_path: Path | None = None,
    vocab_only: bool = False,
) -> Path:
    """Write model_dir as a GGUF at out with llama.cpp's converter script (atomically).
    chat_template: stored in place of the checkpoint's own (the converter reads it from
    tokenizer_config.json, so it is given a view of model_dir with that file rewritten).
    vocab_only: the tokenizer and hyper-parameters alone, a quick check that the model converts."""
    if outtype not in OUTTYPES:
        raise ExportError(f"unknown GGUF outtype {outtype!r} (known: {', '.join(OUTTYPES)})")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        with tempfile.TemporaryDirectory(dir=out.parent, prefix=".convert-input.") as view:
            source = _with_chat_template(model_dir, Path(view), chat_template) if chat_template else model_dir
            cmd = [sys.executable, str(converter), str(source), "--outfile", str(tmp), "--outtype", outtype]
            cmd += ["--vocab-only"] if vocab_only else []
            result = subprocess.run(cmd, capture_output=True, text=True)
        if log_path is not None:
            log_path.parent.mkdir(parents=True, exist_ok=True)
            log_path.write_text(result.stdout + result.stderr)
        if result.returncode != 0 or not tmp.exists():
            tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-6:])
            raise ExportError(f"{model_dir}: llama.cpp's converter failed ({converter.name}):\n{tail}")
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()
    return out


def _with_chat_template(model_dir: Path, view: Path, chat_template: str) -> Path:
    """view: links to model_dir's files, with tokenizer_config.json carrying chat_template."""
    for entry in model_dir.iterdir():
        if entry.name not in CHAT_TEMPLATE_FILES:
            (view / entry.name).symlink_to(entry.resolve())
    config_path = model_dir / "tokenizer_config.json"
    config = json.loads(config_path.read_text()) if config_path.exists() else {}
    config["chat_template"] = chat_template
    (view / "tokenizer_config.json").write_text(json.dumps(config, ensure_ascii=False, indent=2))
    return view
