"""Convert an official RAP-SAM (mmdet/mmengine) ResNet-50 checkpoint to our ``rapsam-r50``.

The official checkpoint does not contain the frozen CLIP class embeddings (a non-persistent
buffer there); pass them separately (C x E or C x P x E, e.g. 155 x 1 x 768).

    python -m rapsam_edge.model.convert CKPT --class-embeddings E.pt --out DIR

Files are read with ``torch.load(..., weights_only=True)`` (no arbitrary unpickling) and the
result is written with ``save_model`` (safetensors + config.json).
"""

from __future__ import annotations

import argparse
import pickle
import re
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor

__all__ = ["ConversionError", "convert_official", "official_to_ours"]

VARIANT = "rapsam-r50"
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


class ConversionError(ValueError):
    """Raised with the full lists of missing / unexpected / mis-shaped keys."""


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


def _expected_shapes(num_classes: int, class_prototypes: int) -> dict[str, tuple[int, ...]]:
    from .variants import build_model

    with torch.device("meta"):
        model = build_model(VARIANT, num_classes=num_classes, class_prototypes=class_prototypes)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


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
) -> dict[str, Tensor]:
    """Official ``state_dict`` (or a whole checkpoint dict with a ``state_dict`` key) -> our
    ``rapsam-r50`` state dict.

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
    expected = _expected_shapes(num_classes, prototypes)
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


def _load_embeddings(path: Path) -> Tensor:
    obj = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(obj, Mapping):
        tensors = [v for v in obj.values() if isinstance(v, Tensor)]
        if len(tensors) != 1:
            raise ConversionError(f"{path}: expected one tensor, found {len(tensors)}")
        obj = tensors[0]
    if not isinstance(obj, Tensor):
        raise ConversionError(f"{path}: not a tensor")
    return obj


def run(args: argparse.Namespace) -> int:
    """`rapsam-edge convert CKPT --class-embeddings E.pt --out DIR`."""
    from .io import save_model
    from .variants import build_model

    try:
        ckpt = torch.load(args.checkpoint, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise SystemExit(
            f"{args.checkpoint}: not loadable with weights_only=True ({err}).\n"
            "Save its bare state_dict first, e.g. in a trusted environment: "
            "torch.save(torch.load(CKPT)['state_dict'], 'state_dict.pth')"
        ) from err
    embed = _load_embeddings(args.class_embeddings)
    state = convert_official(ckpt, class_embeddings=embed)
    c, p, _ = state[CLASS_EMBED_KEY].shape
    model = build_model(VARIANT, num_classes=c, class_prototypes=p)
    model.load_state_dict(state, strict=True)
    classes = None
    if getattr(args, "classes", None) is not None:
        from ..contract.manifest import read_classes_file

        classes = read_classes_file(args.classes)
        if len(classes) != c:
            raise ConversionError(
                f"{args.classes}: {len(classes)} classes for {c} class embeddings"
            )
    path = save_model(model, args.out, classes=classes)
    print(f"wrote {path} ({sum(v.numel() for v in state.values()) / 1e6:.2f} M values)")
    return 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    from .convert_cli import add_arguments

    add_arguments(parser)
    raise SystemExit(run(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
