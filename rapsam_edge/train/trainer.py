"""Co-training loop: panoptic + interactive (prompt) batches every step, video clips every
``video_every`` steps; AdamW, warm-up + step decay, gradient clipping, checkpoint / resume,
progress bar with live loss, and torch.distributed (DDP, launched by ``torchrun``)."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from ..errors import ConfigError
from ..model import build_model
from ..model.io import load_model_grown, save_model
from . import distributed as dist_utils
from .batches import PanopticBatch, VideoBatch, build_loaders, check_sizes, network_side
from .config import TrainConfig
from .distill import DistillWeights, distill_losses, load_teacher
from .losses import LossWeights, prompt_loss, semantic_loss, set_loss
from .optim import build_optimizer, build_scheduler

CHECKPOINT = "last.ckpt"


class TrainStep(nn.Module):
    """Everything one step needs in a single forward (what DDP wraps), so every parameter
    takes part in every step. ``heads`` holds training-only modules (never exported): the
    semantic head (1x1 conv F -> C) when ``semantic`` is set."""

    def __init__(
        self,
        model: nn.Module,
        *,
        semantic: bool = False,
        teacher: nn.Module | None = None,
        feat_adapter: bool = True,
        teacher_size: int = 0,
    ) -> None:
        super().__init__()
        self.model = model
        self.teacher_size = network_side("kd_teacher_size", teacher_size, zero_ok=True)
        self.heads = nn.ModuleDict()
        dim = model.decoder.queries.embedding_dim
        if semantic:
            self.heads["semantic"] = nn.Conv2d(dim, model.num_classes, 1)
        # the frozen teacher stays out of the module tree: not in state_dict, not in DDP,
        # never switched to train mode
        self._teacher = (teacher,) if teacher is not None else ()
        if teacher is not None and feat_adapter:
            self.heads["feat_adapter"] = nn.Conv2d(dim, teacher.decoder.queries.embedding_dim, 1)

    def forward(
        self, images: Tensor, boxes: Tensor, clip: Tensor | None = None
    ) -> tuple[dict, dict, dict | None, Tensor | None, tuple | None]:
        feats = self.model.encode(images)
        panoptic = self.model.decode_panoptic(feats, all_stages=True)
        prompts = self.model.decode_prompts(feats, boxes, all_stages=True)
        video = self.model.forward_clip(clip, all_stages=True) if clip is not None else None
        semantic = self.heads["semantic"](feats) if "semantic" in self.heads else None
        kd = None
        if self._teacher:
            teacher = self._teacher[0]
            t_images, t_boxes = _teacher_view(images, boxes, self.teacher_size)
            with torch.no_grad():
                t_feats = teacher.encode(t_images)
                t_out = {
                    "panoptic": teacher.decode_panoptic(t_feats),
                    "prompts": teacher.decode_prompts(t_feats, t_boxes),
                    "feats": t_feats,
                }
            s_out = {"panoptic": panoptic, "prompts": prompts, "feats": feats}
            adapter = self.heads["feat_adapter"] if "feat_adapter" in self.heads else None
            kd = (s_out, t_out, adapter(feats) if adapter is not None else None)
        return panoptic, prompts, video, semantic, kd


def _teacher_view(images: Tensor, boxes: Tensor, side: int) -> tuple[Tensor, Tensor]:
    """The batch as a teacher of input side ``side`` sees it: images (B x 3 x S x S) and
    prompt boxes scaled by side / S when S is larger (area-like antialiased resize); as it is
    otherwise. The KD losses compare both models on the same image extent (``distill``)."""
    size = images.shape[-1]
    if side <= 0 or size <= side:
        return images, boxes
    small = F.interpolate(images, size=(side, side), mode="bilinear", antialias=True)
    return small, boxes * (side / size)


def _stages(out: dict, use_aux: bool) -> list[dict]:
    return [out, *out.get("aux", [])] if use_aux else [out]


def _clip_as_image(out: dict) -> dict:
    """B x N x T x h x w clip masks -> B x N x (T h) x w, as the clip's features are stacked."""
    return {"cls_logits": out["cls_logits"], "mask_logits": out["mask_logits"].flatten(2, 3)}


def compute_losses(
    outputs: tuple,
    pan: PanopticBatch,
    vid: VideoBatch | None,
    weights: LossWeights,
    use_aux: bool,
    semantic_weight: float = 0.0,
    kd_weights: DistillWeights | None = None,
) -> dict[str, Tensor]:
    panoptic, prompts, video, semantic = outputs[:4]
    kd = outputs[4] if len(outputs) > 4 else None
    n_masks = dist_utils.mean_over_processes(float(sum(len(t["classes"]) for t in pan.targets)))
    losses = set_loss(_stages(panoptic, use_aux), pan.targets, weights, max(n_masks, 1.0))
    losses.update(prompt_loss(_stages(prompts, use_aux), pan.prompt_masks, weights))
    if semantic is not None:
        losses["loss_semantic"] = semantic_loss(semantic, pan.targets, semantic_weight)
    if video is not None and vid is not None:
        n_vid = dist_utils.mean_over_processes(float(sum(len(t["classes"]) for t in vid.targets)))
        stages = [_clip_as_image(o) for o in _stages(video, use_aux)]
        for key, value in set_loss(stages, vid.targets, weights, max(n_vid, 1.0)).items():
            losses[f"{key}_video"] = value
    if kd is not None:
        losses.update(distill_losses(*kd, kd_weights or DistillWeights()))
    return losses


def _check_kd(cfg: TrainConfig) -> None:
    """Raises ConfigError for KD settings that would be silently wrong (negative weights, a
    temperature <= 0)."""
    weights = ("kd_dense_weight", "kd_prompt_weight", "kd_feat_weight", "kd_object_weight")
    for name in weights:
        if getattr(cfg, name) < 0:
            raise ConfigError(f"{name} is {getattr(cfg, name)}", hint="KD weights are >= 0")
    if not cfg.kd_temperature > 0:
        raise ConfigError(f"kd_temperature is {cfg.kd_temperature}", hint="pass a T > 0")


def _save_checkpoint(path: Path, step: int, model, heads, optimizer, scheduler) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(
        {
            "step": step,
            "model": model.state_dict(),
            "heads": heads.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "torch_rng": torch.get_rng_state(),
        },
        tmp,
    )
    tmp.replace(path)  # atomic: an interrupted save never corrupts the last checkpoint


def _load_checkpoint(path: Path, model, heads, optimizer, scheduler) -> int:
    from ..model.checkpoint import read_checkpoint

    # sizes and layouts checked before allocating, nothing in the file executed
    state = read_checkpoint(path)
    model.load_state_dict(state["model"])
    if "heads" in state:  # checkpoints without training-only heads start them afresh
        heads.load_state_dict(state["heads"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["torch_rng"])
    return int(state["step"])


def _forever(loader) -> Iterator:
    epoch = 0
    while True:
        batches = loader.batch_sampler
        if hasattr(batches, "set_epoch"):
            batches.set_epoch(epoch)
        yield from loader
        epoch += 1


def _build(cfg: TrainConfig, classes, rank: int) -> nn.Module:
    """The model to train: grown from ``--init-weights``, or fresh, with ``--init-trunk``'s
    trunk; it carries the dataset's class vocabulary in its config."""
    num_classes = len(classes)
    if cfg.init_weights:
        model, fresh = load_model_grown(cfg.init_weights)
        if fresh and rank == 0:
            print(f"init_weights: {len(fresh)} tensors not (fully) carried over: {fresh}")
    else:
        model = build_model(cfg.variant, num_classes=num_classes)
    if cfg.init_trunk:
        from .pretrain import load_trunk

        load_trunk(model, cfg.init_trunk)
    if model.num_classes != num_classes:
        raise ConfigError(
            f"model has {model.num_classes} classes but the dataset has {num_classes}",
            hint="--init-weights must come from a run on a dataset with the same classes",
        )
    # the dataset's vocabulary travels with the weights (config.json) into every bundle
    model.config["classes"] = [
        {"id": c.id, "name": c.name, "is_thing": c.is_thing} for c in classes
    ]
    return model


def _kd_weights(cfg: TrainConfig) -> DistillWeights:
    return DistillWeights(
        cfg.kd_dense_weight,
        cfg.kd_prompt_weight,
        cfg.kd_feat_weight,
        cfg.kd_object_weight,
        cfg.kd_temperature,
    )


def _resume(cfg: TrainConfig, ckpt: Path, model, heads, optimizer, scheduler) -> int:
    """The step to start from: ``--resume`` reads ``out/last.ckpt`` when it exists,
    ``--resume-from`` a given checkpoint; else 0."""
    if cfg.resume and ckpt.exists():
        return _load_checkpoint(ckpt, model, heads, optimizer, scheduler)
    if cfg.resume_from:
        return _load_checkpoint(Path(cfg.resume_from), model, heads, optimizer, scheduler)
    return 0


class _Log:
    """``log.jsonl`` of rank 0: one record every ``log_every`` steps and at the last step."""

    def __init__(self, path: Path, append: bool, world: int) -> None:
        self.file = path.open("a" if append else "w")
        self.world = world
        self.t_last, self.images_since = time.perf_counter(), 0

    def write(self, done: int, loss: Tensor, losses: dict, grad_norm, lr: float) -> None:
        now = time.perf_counter()
        record = {
            "step": done,
            "loss": round(loss.item(), 5),
            **{k: round(float(v.detach()), 5) for k, v in losses.items()},
            "grad_norm": round(float(grad_norm), 4),
            "lr": lr,
            "images_per_s": round(self.images_since * self.world / (now - self.t_last), 3),
        }
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()
        self.t_last, self.images_since = now, 0


def train(cfg: TrainConfig) -> nn.Module:
    """Train according to ``cfg`` and return the trained model; ``cfg.out`` then holds
    ``model.safetensors``, ``config.json``, ``train_config.json``, ``log.jsonl`` and
    ``last.ckpt`` (written by rank 0)."""
    _check_kd(cfg)
    check_sizes(cfg)  # every size setting, before the run directory or any data
    rank, world = dist_utils.init_from_env()
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    out = Path(cfg.out)
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        cfg.save(out / "train_config.json")
    dist_utils.barrier()

    # same initial weights on every rank; per-rank data order comes from the samplers
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    pan_loader, vid_loader, classes = build_loaders(cfg, rank=rank, world=world)
    model = _build(cfg, classes, rank)
    teacher = load_teacher(cfg.teacher, num_classes=len(classes)) if cfg.teacher else None
    step_module = TrainStep(
        model,
        semantic=cfg.semantic_weight > 0,
        teacher=teacher,
        feat_adapter=cfg.kd_feat_weight > 0,
        teacher_size=cfg.kd_teacher_size,
    )
    optimizer = build_optimizer(model, cfg, step_module.heads)
    scheduler = build_scheduler(optimizer, cfg)
    ckpt = out / CHECKPOINT
    start = _resume(cfg, ckpt, model, step_module.heads, optimizer, scheduler)
    torch.manual_seed(cfg.seed * 1000 + rank + start)  # point sampling differs per rank

    _loop(
        cfg,
        step_module,
        optimizer,
        scheduler,
        batches=(_forever(pan_loader), _forever(vid_loader) if vid_loader is not None else None),
        start=start,
        rank=rank,
        world=world,
    )
    dist_utils.broadcast_buffers(model)
    dist_utils.barrier()
    return model


def _loop(cfg: TrainConfig, step_module, optimizer, scheduler, *, batches, start, rank, world):
    """Steps ``start`` .. ``cfg.steps``: forward, losses, clipped update; logs and checkpoints
    on rank 0."""
    from tqdm import tqdm

    model = step_module.model
    runner = DistributedDataParallel(step_module) if world > 1 else step_module
    weights = LossWeights(num_points=cfg.num_points)
    kd_weights = _kd_weights(cfg)
    out = Path(cfg.out)
    pan_iter, vid_iter = batches
    bar = tqdm(total=cfg.steps, initial=start, disable=rank != 0, dynamic_ncols=True, unit="step")
    log = _Log(out / "log.jsonl", append=bool(start), world=world) if rank == 0 else None
    model.train()
    for step in range(start, cfg.steps):
        pan = next(pan_iter)
        use_video = vid_iter is not None and cfg.video_every > 0 and step % cfg.video_every == 0
        vid = next(vid_iter) if use_video else None
        outputs = runner(pan.images, pan.prompt_boxes, vid.clips if vid is not None else None)
        losses = compute_losses(
            outputs, pan, vid, weights, cfg.aux_loss, cfg.semantic_weight, kd_weights
        )
        loss = sum(losses.values())
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss is {loss.item()} at step {step}: {losses}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        scheduler.step()

        done = step + 1
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.3f}", lr=f"{scheduler.get_last_lr()[0]:.2e}")
        if log is not None:
            log.images_since += pan.images.shape[0] + (
                vid.clips.shape[0] * vid.clips.shape[1] if vid else 0
            )
            if done % cfg.log_every == 0 or done == cfg.steps:
                log.write(done, loss, losses, grad_norm, scheduler.get_last_lr()[0])
        if rank == 0 and (done % cfg.checkpoint_every == 0 or done == cfg.steps):
            _save_checkpoint(out / CHECKPOINT, done, model, step_module.heads, optimizer, scheduler)
            save_model(model, out)
    bar.close()
    if log is not None:
        log.file.close()
