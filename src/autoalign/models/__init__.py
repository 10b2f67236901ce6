"""Model specs -> local Hugging Face directories, and loading them.

A spec is one of: a bundled name (`autoalign models` lists them), a local directory holding a
Hugging Face checkpoint, or a hub id (only when a hub is reachable).
"""

from __future__ import annotations

from pathlib import Path

from autoalign.models.bundled import BUNDLED, cached_dir, ensure_bundled, is_cached


class ModelNotFound(RuntimeError):
    pass


def resolve_model(spec: str, log=print) -> Path:
    if spec in BUNDLED:
        return ensure_bundled(spec, log=log)
    path = Path(spec).expanduser()
    if path.is_dir():
        if not (path / "config.json").exists():
            raise ModelNotFound(f"model directory {path} has no config.json (not a Hugging Face checkpoint)")
        _require_safetensors(path)
        return path
    if path.exists():
        raise ModelNotFound(f"model spec {spec} is a file; give a checkpoint directory")
    return _download_from_hub(spec)


PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt")


def _require_safetensors(path: Path) -> None:
    """Weights are only ever read from safetensors: a pickle checkpoint can run code on load."""
    if any(path.glob("*.safetensors")):
        return
    pickles = sorted(p.name for p in path.iterdir() if p.suffix in PICKLE_SUFFIXES)
    if pickles:
        raise ModelNotFound(
            f"model directory {path} has only pickle weights ({', '.join(pickles[:3])}), which autoalign does not load "
            "(unpickling can run code). If you trust the file, convert it once: "
            "AutoModelForCausalLM.from_pretrained(dir, use_safetensors=False).save_pretrained(new_dir)"
        )
    raise ModelNotFound(f"model directory {path} has no weights (*.safetensors)")


def _download_from_hub(spec: str) -> Path:
    offline = ", ".join(BUNDLED)
    if spec.count("/") != 1:
        raise ModelNotFound(
            f"unknown model '{spec}': not a bundled model ({offline}), not a local directory, "
            "and not a hub id of the form owner/name"
        )
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(spec, allow_patterns=["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja"]))
    except Exception as e:  # noqa: BLE001 - any hub failure gets the same actionable message
        raise ModelNotFound(
            f"could not fetch model '{spec}' from the Hugging Face hub ({type(e).__name__}: {e}). "
            f"Offline alternatives: a local checkpoint directory (model.name=/path/to/dir) "
            f"or a bundled model ({offline})."
        ) from None


def list_models() -> list[dict[str, str]]:
    return [
        {
            "name": m.name,
            "description": m.description,
            "cached": str(is_cached(m.name)),
            "path": str(cached_dir(m.name)),
        }
        for m in BUNDLED.values()
    ]
