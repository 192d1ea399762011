"""Convert an official RAP-SAM (mmdet/mmengine) checkpoint to our ``rapsam-r50`` (or the
same layout on ResNet-18, ``rapsam-r18``); ``rapsam-edge convert`` (``commands.convert``) also
exports the result to a bundle.

The official checkpoint does not contain the frozen CLIP class embeddings (a non-persistent
buffer there); pass them separately (C x E, or C x K x E with K synonyms / prompt templates per
class, e.g. 155 x 1 x 768), with their class names (a JSON vocabulary).

    rapsam-edge convert CKPT --class-embeddings E.npy --classes NAMES.json --out DIR
    rapsam-edge convert CKPT --class-embeddings E.npy --classes NAMES.json --export BUNDLE \
        [--recipe x86-openvino-fp32]

Checkpoints are read with ``checkpoint.read_checkpoint`` (torch's restricted unpickler plus
inert placeholders for mmengine / numpy objects: nothing in the file is executed) or from
``.safetensors``; the result is written with ``save_model`` (safetensors + config.json).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor

from ..contract import limits as L
from ..errors import ConfigError
from .checkpoint import CheckpointError, extract_state_dict, read_checkpoint
from .safe_read import read_npy, read_safetensors

__all__ = [
    "ConversionError",
    "convert_file",
    "convert_official",
    "detect_variant",
    "load_class_embeddings",
    "official_to_ours",
    "read_official",
]

VARIANT = "rapsam-r50"
#: variants with the official layout, tried in this order by ``detect_variant``
OFFICIAL_VARIANTS = ("rapsam-r50", "rapsam-r18")
CLASS_EMBED_KEY = "decoder.class_embed"

# (official prefix, our prefix); the first matching rule wins.
_RULES: tuple[tuple[str, str], ...] = (
    ("backbone.", "backbone."),
    ("neck.deconv.", "neck."),
    ("neck.loc_conv.", "neck.loc_conv."),
    ("panoptic_head.kernels.", "decoder.queries."),
    ("panoptic_head.mask_tokens.", "prompt_encoder.mask_token."),
    ("panoptic_head.pb_embedding.", "prompt_encoder.prompt_embed."),
    ("panoptic_head.pos_linear.", "prompt_encoder.pos_proj."),
    ("panoptic_head.panoptic_attn.", "decoder.object_adapter.kernel_update."),
    ("panoptic_head.panoptic_cls.", "decoder.object_adapter.cls_head.proj."),
    ("panoptic_head.prompt_attn.attn.", "decoder.prompt_adapter.cross_attn."),
    ("panoptic_head.prompt_norm.", "decoder.prompt_adapter.norm."),
    ("panoptic_head.prompt_iou.", "decoder.prompt_adapter.iou_head."),
)
# Inside ``panoptic_head.mask_heads.{i}.`` -> ``decoder.stages.{i}.``.
_STAGE = re.compile(r"^panoptic_head\.mask_heads\.(\d+)\.(.+)$")
_STAGE_RULES: tuple[tuple[str, str], ...] = (
    ("kernel_update.", "kernel_update."),
    ("s_atten.", "self_attn."),
    ("s_atten_norm.", "self_attn_norm."),
    ("ffn.layers.0.0.", "ffn.fc1."),
    ("ffn.layers.1.", "ffn.fc2."),
    ("ffn_norm.", "ffn_norm."),
    ("cls_fcs.", "cls_fcs."),
    ("cls_proj.", "cls_head.proj."),
    ("mask_fcs.", "mask_fcs."),
    ("fc_mask.", "fc_mask."),
    ("iou_embed.", "iou_head."),
)


class ConversionError(ConfigError):
    """Raised with the full lists of missing / unexpected / mis-shaped keys, or for unusable
    class embeddings / vocabularies."""

    default_hint = "check that the checkpoint is RAP-SAM's and the embeddings match its classes"


def _rename(key: str, rules: tuple[tuple[str, str], ...]) -> str | None:
    for old, new in rules:
        if key.startswith(old):
            return new + key[len(old) :]
    return None


def official_to_ours(key: str) -> str | None:
    """Official parameter name -> ours, or None when no rule applies."""
    m = _STAGE.match(key)
    if m:
        rest = _rename(m.group(2), _STAGE_RULES)
        return None if rest is None else f"decoder.stages.{m.group(1)}.{rest}"
    return _rename(key, _RULES)


def _expected_shapes(
    num_classes: int, class_prototypes: int, variant: str = VARIANT
) -> dict[str, tuple[int, ...]]:
    from .variants import build_model

    with torch.device("meta"):
        model = build_model(variant, num_classes=num_classes, class_prototypes=class_prototypes)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def detect_variant(official_state_dict: Mapping[str, Tensor]) -> str:
    """The official-layout variant whose backbone and neck shapes the checkpoint has.

    Raises:
      ConversionError: none of ``OFFICIAL_VARIANTS`` fits (names the first mismatches)."""
    report = []
    for variant in OFFICIAL_VARIANTS:
        expected = _expected_shapes(155, 1, variant)
        probe = [
            (k, official_to_ours(k))
            for k in official_state_dict
            if k.startswith(("backbone.", "neck."))
        ]
        bad = [
            k
            for k, new in probe
            if new not in expected or tuple(official_state_dict[k].shape) != expected[new]
        ]
        if probe and not bad:
            return variant
        report.append(f"{variant}: {len(bad)} backbone/neck tensors differ (e.g. {bad[:2]})")
    raise ConversionError("no official-layout variant fits this checkpoint: " + "; ".join(report))


def _class_embeddings(embed: Tensor) -> Tensor:
    if embed.dim() == 2:
        embed = embed.unsqueeze(1)
    if embed.dim() != 3:
        raise ConversionError(
            f"class embeddings must be C x E or C x P x E, got {tuple(embed.shape)}"
        )
    return torch.nn.functional.normalize(embed.float(), dim=-1)


def convert_official(
    official_state_dict: Mapping[str, Tensor],
    *,
    class_embeddings: Tensor | None = None,
    variant: str = VARIANT,
) -> dict[str, Tensor]:
    """Official ``state_dict`` (or a whole checkpoint dict with a ``state_dict`` key) -> our
    ``variant`` (``rapsam-r50``) state dict.

    Strict: any official key without a mapping, any expected key not produced and any shape
    mismatch raises ``ConversionError`` listing all of them. ``class_embeddings`` (C x E or
    C x P x E) becomes ``decoder.class_embed`` (rows L2-normalised); without it that key is
    left out (load with ``strict=False`` or call ``model.decoder.set_class_embeddings``).
    """
    sd = official_state_dict
    if "state_dict" in sd and isinstance(sd["state_dict"], Mapping):
        sd = sd["state_dict"]
    embed = None if class_embeddings is None else _class_embeddings(class_embeddings)
    num_classes = 155 if embed is None else embed.shape[0]
    prototypes = 1 if embed is None else embed.shape[1]
    expected = _expected_shapes(num_classes, prototypes, variant)
    if embed is None:
        expected.pop(CLASS_EMBED_KEY)

    out: dict[str, Tensor] = {}
    unexpected: list[str] = []
    shape_errors: list[str] = []
    for key, value in sd.items():
        new = official_to_ours(key)
        if new is None or new not in expected:
            unexpected.append(key)
            continue
        if tuple(value.shape) != expected[new]:
            shape_errors.append(f"{key} -> {new}: {tuple(value.shape)} != {expected[new]}")
            continue
        out[new] = value
    if embed is not None:
        if tuple(embed.shape) != expected[CLASS_EMBED_KEY]:
            shape_errors.append(
                f"class embeddings {tuple(embed.shape)} != {expected[CLASS_EMBED_KEY]}"
            )
        out[CLASS_EMBED_KEY] = embed
    missing = sorted(set(expected) - set(out) - {CLASS_EMBED_KEY})
    if missing or unexpected or shape_errors:
        parts = []
        if missing:
            parts.append(
                f"missing ({len(missing)}, ours without an official source): " + ", ".join(missing)
            )
        if unexpected:
            parts.append(
                f"unexpected ({len(unexpected)} official keys): " + ", ".join(sorted(unexpected))
            )
        if shape_errors:
            parts.append(f"shape mismatch ({len(shape_errors)}): " + "; ".join(shape_errors))
        raise ConversionError("cannot convert the official checkpoint:\n" + "\n".join(parts))
    return out


def load_class_embeddings(path: str | Path) -> Tensor:
    """Class embeddings from ``.npy`` (no pickles), ``.safetensors``, or a torch file holding
    one tensor (read with ``read_checkpoint``): C x E or C x K x E float.

    Every reader checks the sizes the file declares against its length and
    ``contract.limits`` (``MAX_EMBEDDINGS_BYTES``, ...) before allocating (``safe_read``), so
    a tensor viewing a few bytes as millions of rows is refused, not materialised.

    Raises:
      ConversionError: not a regular file, over the limits, unreadable, several / no
        tensors, not float, or a wrong rank."""
    path = Path(path)
    suffix = path.suffix.lower()
    what = "class embeddings"
    if suffix == ".npy":
        obj = torch.from_numpy(
            read_npy(path, what, ConversionError, max_bytes=L.MAX_EMBEDDINGS_BYTES)
        )
    else:
        if suffix == ".safetensors":
            found: object = read_safetensors(
                path, what, ConversionError, max_bytes=L.MAX_EMBEDDINGS_BYTES
            )
        else:
            try:
                found = read_checkpoint(path, max_bytes=L.MAX_EMBEDDINGS_BYTES)
            except CheckpointError as e:
                raise ConversionError(f"{what}: {e}", hint=e.hint) from e
        tensors = (
            [v for v in found.values() if isinstance(v, Tensor)]
            if isinstance(found, Mapping)
            else [found]
        )
        if len(tensors) != 1:
            raise ConversionError(f"{path}: expected one tensor, found {len(tensors)}")
        obj = tensors[0]
    if not isinstance(obj, Tensor) or not obj.is_floating_point():
        raise ConversionError(f"{path}: class embeddings must be a float tensor")
    if obj.dim() not in (2, 3):
        raise ConversionError(
            f"{path}: class embeddings must be C x E or C x K x E, got {tuple(obj.shape)}"
        )
    return obj


def read_official(path: str | Path, *, ema: bool = False) -> dict[str, Tensor]:
    """The model tensors of an official checkpoint file (``.pth`` / ``.safetensors``), read
    with every declared size checked first (``read_checkpoint`` / ``safe_read``)."""
    path = Path(path)
    if path.suffix.lower() == ".safetensors":
        tensors = read_safetensors(
            path, "checkpoint", CheckpointError, max_bytes=L.MAX_CHECKPOINT_BYTES
        )
        return extract_state_dict(tensors, ema=ema)
    return extract_state_dict(read_checkpoint(path), ema=ema)


def convert_file(
    checkpoint: str | Path,
    *,
    class_embeddings: str | Path,
    classes: str | Path | None = None,
    variant: str = "auto",
    ema: bool = False,
):
    """Official checkpoint file + class embeddings (+ vocabulary) -> our torch model.

    Returns (model, vocabulary or None). Raises ConversionError / CheckpointError."""
    from .variants import build_model

    # the small files first: a bad one fails before the checkpoint is read
    embeddings = load_class_embeddings(class_embeddings)
    vocab = None
    if classes is not None:
        from ..contract.manifest import read_classes_file

        vocab = [e.to_dict() for e in read_classes_file(classes)]
    sd = read_official(checkpoint, ema=ema)
    variant = detect_variant(sd) if variant == "auto" else variant
    state = convert_official(sd, class_embeddings=embeddings, variant=variant)
    c, p, _ = state[CLASS_EMBED_KEY].shape
    if vocab is not None and len(vocab) != c:
        raise ConversionError(f"{classes}: {len(vocab)} classes for {c} class embeddings")
    model = build_model(variant, num_classes=c, class_prototypes=p)
    model.load_state_dict(state, strict=True)
    model.config["classes"] = vocab
    return model, vocab
