"""Read the tensors of a training checkpoint without executing anything in it.

Checkpoints written by mmengine (the RAP-SAM reference's framework) hold, next to
``state_dict``, objects of classes a deployment machine does not have and must not import:
``meta`` (numpy scalars, dataset meta), ``message_hub`` (``mmengine.logging.HistoryBuffer``
with numpy arrays), optimizer and scheduler state. ``torch.load(weights_only=True)`` refuses
them; ``weights_only=False`` would run whatever the pickle asks for.

``read_checkpoint`` keeps torch's restricted ``weights_only`` unpickler (only tensors, storages
and plain containers are materialised) and adds, for every other global the file names (found
with ``torch.serialization.get_unsafe_globals_in_checkpoint``), an inert ``Opaque`` placeholder:
calling it, constructing it or setting its state only records nothing-executing data. So
``os.system`` in a hostile pickle becomes an ``Opaque`` too and nothing runs.

``extract_state_dict`` then finds the model's tensors: ``state_dict`` / ``model`` /
``module`` / ``ema_state_dict`` (mmengine's EMA hook) at the top level, or a bare mapping of
tensors, and strips a shared ``module.`` (DDP) or ``model.`` prefix.
"""

from __future__ import annotations

import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..contract import limits as L
from ..contract.files import open_regular
from ..errors import ConfigError
from .safe_read import check_tensors, check_zip

__all__ = ["CheckpointError", "Opaque", "extract_state_dict", "read_checkpoint"]

#: top-level keys that hold model weights, in order of preference (``ema`` reverses the EMA)
_WEIGHT_KEYS = ("state_dict", "model", "module", "model_state_dict", "net")
_EMA_KEYS = ("ema_state_dict", "ema", "model_ema", "state_dict_ema")
_PREFIXES = ("module.", "model.", "_orig_mod.")


class CheckpointError(ConfigError):
    """A checkpoint that cannot be read safely, or holds no model weights."""

    default_hint = (
        "give a torch.save / mmengine checkpoint (zip format) or a .safetensors file; "
        "`--debug` shows the unpickler's message"
    )


class Opaque:
    """Inert stand-in for a class or function a checkpoint names but we do not import.

    It accepts any call / construction / state and keeps the arguments only as plain data
    (``args``, ``state``) for inspection; it never calls anything."""

    _name = "?"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args
        self.kwargs = kwargs
        self.state: Any = None

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __repr__(self) -> str:
        return f"<Opaque {self._name}>"


def _placeholder(name: str) -> type:
    module, _, qual = name.rpartition(".")
    cls = type(qual or name, (Opaque,), {"_name": name, "__module__": module or "opaque"})
    return cls


def read_checkpoint(path: str | Path, *, max_bytes: int = L.MAX_CHECKPOINT_BYTES) -> Any:
    """Unpickle a torch zip checkpoint with only tensors and plain containers materialised.

    Arguments:
      path: a file written by ``torch.save`` (zip format, torch >= 1.6; mmengine's
        ``save_checkpoint`` uses it).
      max_bytes: the largest file accepted (``contract.limits.MAX_CHECKPOINT_BYTES``).

    Returns:
      The checkpoint object (dicts, lists, tensors; unknown objects as ``Opaque``).

    Raises:
      CheckpointError: not a regular file (a named pipe is never opened blocking) or over
        ``max_bytes``, not the zip format (legacy pickles are refused: their tensor storages
        cannot be read with the restricted unpickler), records declaring more than the file
        holds (``safe_read.check_zip``), corrupt, or tensors that leave their storage or
        share memory (``safe_read.check_tensors``). One line; never advice to unpickle
        without restrictions.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint file")
    with open_regular(path, "checkpoint", CheckpointError, max_bytes=max_bytes) as f:
        if not zipfile.is_zipfile(f):
            raise CheckpointError(
                f"{path}: not a torch zip checkpoint (legacy or foreign pickle); "
                "it cannot be read without executing it",
                hint="re-save it with torch >= 1.6 (torch.save's default format) where you "
                "trust it",
            )
        check_zip(f, path, CheckpointError)
        try:
            f.seek(0)
            names = torch.serialization.get_unsafe_globals_in_checkpoint(f)
            placeholders = [(_placeholder(n), n) for n in names]
            f.seek(0)
            with torch.serialization.safe_globals(placeholders):
                obj = torch.load(f, map_location="cpu", weights_only=True, mmap=False)
        except CheckpointError:
            raise
        except Exception as e:
            raise CheckpointError(
                f"{path}: cannot read the checkpoint safely ({_reason(e)})", hint=_UNSAFE_HINT
            ) from e
    check_tensors(obj, path, CheckpointError)
    return obj


#: the hint of a checkpoint the restricted unpickler refuses (never: unpickle without it)
_UNSAFE_HINT = (
    "only tensors and plain containers are loaded and nothing in the file runs; save the "
    "weights alone (torch.save(model.state_dict()) or safetensors) and convert that"
)
#: lines of torch's unpickler messages that advise disabling the restricted unpickler
_ADVICE = ("weights only load failed", "weights_only", "re-running", "check the documentation")


def _reason(e: BaseException) -> str:
    """The cause in torch's unpickler error, one line, without its advice to re-run
    ``torch.load`` unrestricted."""
    lines = [ln.strip() for ln in str(e).splitlines()]
    keep = [ln for ln in lines if ln and not any(a in ln.lower() for a in _ADVICE)]
    text = "; ".join(keep) or type(e).__name__
    return text if len(text) <= 240 else text[:237] + "..."


def _is_weights(obj: Any) -> bool:
    return (
        isinstance(obj, Mapping)
        and len(obj) > 0
        and all(isinstance(k, str) for k in obj)
        and sum(isinstance(v, Tensor) for v in obj.values()) >= max(1, len(obj) // 2)
    )


def _strip_prefixes(sd: dict[str, Tensor]) -> dict[str, Tensor]:
    changed = True
    while changed:
        changed = False
        for p in _PREFIXES:
            if sd and all(k.startswith(p) for k in sd):
                sd = {k[len(p) :]: v for k, v in sd.items()}
                changed = True
    return sd


def extract_state_dict(ckpt: Any, *, ema: bool = False) -> dict[str, Tensor]:
    """The model's tensors in a checkpoint object (see module docstring).

    Arguments:
      ckpt: what ``read_checkpoint`` (or ``torch.load``) returned.
      ema: take the EMA copy (``ema_state_dict``, ...) instead of the trained weights.

    Returns:
      name -> tensor (non-tensor entries dropped, shared ``module.``/``model.`` prefix removed).

    Raises:
      CheckpointError: no weights found (names the top-level keys seen), or ``ema`` asked and
        no EMA copy present.
    """
    if not isinstance(ckpt, Mapping):
        raise CheckpointError(f"checkpoint is a {type(ckpt).__name__}, not a mapping")
    keys = _EMA_KEYS if ema else _WEIGHT_KEYS
    found = next((ckpt[k] for k in keys if k in ckpt and _is_weights(ckpt[k])), None)
    if found is None and not ema and _is_weights(ckpt):
        found = ckpt
    if found is None:
        what = "an EMA copy" if ema else "model weights"
        raise CheckpointError(
            f"no {what} in the checkpoint; top-level keys: {sorted(map(str, ckpt))[:20]}"
        )
    sd = {k: v for k, v in found.items() if isinstance(v, Tensor)}
    if ema:  # mmengine's EMA wrapper counts updates in a non-weight buffer
        sd.pop("steps", None)
    return _strip_prefixes(sd)
