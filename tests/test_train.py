"""Training end to end through the file formats (make-data -> COCO panoptic / YouTube-VIS
readers -> co-training), resume, and DDP with two gloo processes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from rapsam_edge.data.generate import make_dataset  # noqa: E402
from rapsam_edge.train.config import TrainConfig  # noqa: E402
from rapsam_edge.train.trainer import train  # noqa: E402


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data")
    make_dataset(
        root,
        seed=5,
        split="train",
        num_images=8,
        num_videos=2,
        video_length=4,
        image_size=(96, 96),
        progress=False,
    )
    return root


def _cfg(data: Path, out: Path, **kw) -> TrainConfig:
    base = dict(
        variant="edge-xs",
        data=str(data),
        out=str(out),
        steps=3,
        batch_size=2,
        image_size=64,
        prompts_per_image=3,
        video_every=2,
        video_batch_size=1,
        num_points=256,
        workers=0,
        warmup_steps=2,
        checkpoint_every=2,
        log_every=1,
        threads=1,
    )
    base.update(kw)
    return TrainConfig(**base)


def test_train_resume_and_outputs(tiny_data: Path, tmp_path: Path):
    out = tmp_path / "run"
    model = train(_cfg(tiny_data, out, steps=3))
    for name in ("model.safetensors", "config.json", "train_config.json", "last.ckpt"):
        assert (out / name).exists(), name
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3]
    assert all(r["loss"] > 0 for r in log)
    assert "loss_cls_video" in log[0]  # step 0 had a video clip batch
    assert "loss_prompt_dice" in log[1]
    assert log[0]["loss_semantic"] > 0  # the training-only semantic head is on by default
    state = torch.load(out / "last.ckpt", weights_only=True)
    assert state["step"] == 3
    assert set(state["heads"]) == {"semantic.weight", "semantic.bias"}
    # the training-only head never reaches the exported weights
    from safetensors.torch import load_file

    assert not any("semantic" in k for k in load_file(str(out / "model.safetensors")))
    # resume: continues at step 4, appends to the log
    before = {k: v.clone() for k, v in model.state_dict().items()}
    resumed = train(_cfg(tiny_data, out, steps=5))
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3, 4, 5]
    changed = any(not torch.equal(before[k], v) for k, v in resumed.state_dict().items())
    assert changed
    # a fresh run directory continues from a given checkpoint (e.g. one committed to git)
    other = tmp_path / "other"
    train(_cfg(tiny_data, other, steps=6, resume_from=str(out / "last.ckpt")))
    log = [json.loads(line) for line in (other / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [6]


def test_weights_reload_identically(tiny_data: Path, tmp_path: Path):
    from rapsam_edge.model.io import load_model

    model = train(_cfg(tiny_data, tmp_path / "run", steps=1, video_every=0)).eval()
    loaded = load_model(tmp_path / "run")
    x = torch.rand(1, 3, 64, 64) * 255
    with torch.no_grad():
        a, b = model(x), loaded(x)
    assert torch.equal(a["mask_logits"], b["mask_logits"])


def test_ddp_two_gloo_processes_end_identical(tiny_data: Path, tmp_path: Path):
    from rapsam_edge.train.ddp_check import ddp_rank_weights

    cfg = _cfg(tiny_data, tmp_path / "ddp", steps=2, video_every=0, batch_size=1)
    a, b = ddp_rank_weights(cfg, world=2)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    # and training really moved the weights away from the shared initialisation
    init = train(_cfg(tiny_data, tmp_path / "init", steps=0, video_every=0)).state_dict()
    assert any(not torch.equal(init[k], a[k]) for k in a)


def test_eval_cli_on_trained_weights(tiny_data: Path, tmp_path: Path):
    from rapsam_edge.cli import main

    train(_cfg(tiny_data, tmp_path / "run", steps=1, video_every=0))
    out = tmp_path / "metrics.json"
    code = main(
        [
            "eval",
            "--weights",
            str(tmp_path / "run"),
            "--data",
            str(tiny_data),
            "--split",
            "train",
            "--json",
            str(out),
            "--max-images",
            "3",
            "--max-videos",
            "1",
            "--quiet",
        ]
    )
    assert code == 0
    metrics = json.loads(out.read_text())
    assert metrics["backend"] == "torch"
    assert metrics["num_images"] == 3 and metrics["num_videos"] == 1
    for key in ("pq", "miou", "vis_ap"):
        assert key in metrics
    assert 0.0 <= metrics["miou"] <= 100.0  # a 1-step model: low, but a real number


def test_init_weights_carries_over_a_grown_model(tiny_data: Path, tmp_path: Path):
    """Weights saved before a layer gained input channels (and before a module was added)
    fine-tune from where they were: the carried-over function is unchanged."""
    from safetensors.torch import load_file, save_file

    from rapsam_edge.model.io import load_model, load_model_grown

    src = tmp_path / "src"
    train(_cfg(tiny_data, src, steps=1, video_every=0))
    full = load_file(str(src / "model.safetensors"))
    old = {k: v for k, v in full.items() if not k.startswith("prompt_encoder.fourier_proj")}
    agg = old["neck.loc_conv.weight"].shape[1] - 24  # the 6-frequency Fourier channels
    old["neck.loc_conv.weight"] = old["neck.loc_conv.weight"][:, :agg].clone()
    save_file(old, str(src / "model.safetensors"))
    grown, fresh = load_model_grown(src)
    assert fresh == [
        "neck.loc_conv.weight",
        "prompt_encoder.fourier_proj.weight",
        "prompt_encoder.fourier_proj.bias",
    ]
    w = grown.state_dict()["neck.loc_conv.weight"]
    assert torch.equal(w[:, :agg], old["neck.loc_conv.weight"])
    assert not w[:, agg:].any()
    # zeroing the original's Fourier channels gives the same panoptic function
    save_file(full, str(src / "model.safetensors"))
    ref = load_model(src)
    with torch.no_grad():
        ref.neck.loc_conv.weight[:, agg:] = 0
        x = torch.rand(1, 3, 64, 64) * 255
        torch.testing.assert_close(grown.eval()(x)["mask_logits"], ref(x)["mask_logits"])
    # an unknown tensor is an error, not a silent drop
    save_file({**full, "mystery.weight": torch.zeros(2)}, str(src / "model.safetensors"))
    with pytest.raises(ValueError, match="mystery"):
        load_model_grown(src)
    # and a training run starts from them (init_weights)
    save_file(old, str(src / "model.safetensors"))
    model = train(
        _cfg(tiny_data, tmp_path / "ft", steps=1, video_every=0, lr=0.0, init_weights=str(src))
    )
    assert torch.equal(
        model.state_dict()["backbone.features.0.0.weight"], old["backbone.features.0.0.weight"]
    )


def test_pretrain_then_train_from_the_trunk(tiny_data: Path, tmp_path: Path):
    """`pretrain` writes a trunk that `train --init-trunk` loads (the same tensors), resumes
    from its checkpoint, and refuses a trunk of another width."""
    from safetensors.torch import load_file

    from rapsam_edge.errors import ConfigError
    from rapsam_edge.model import build_model
    from rapsam_edge.train.config import PretrainConfig
    from rapsam_edge.train.pretrain import ShapeScenes, load_trunk, pretrain

    image, target, presence = ShapeScenes(
        size=64, radius_range=(0.2, 0.4), max_things=2, seed=0
    ).sample(__import__("numpy").random.default_rng(0))
    assert image.shape == (3, 64, 64) and target.shape == (8, 8) and presence.shape == (8,)
    assert presence.sum() >= 1  # every scene has a thing
    out = tmp_path / "pt"
    cfg = PretrainConfig(
        variant="edge-xs",
        out=str(out),
        steps=2,
        batch_size=4,
        image_size=64,
        workers=0,
        log_every=1,
        checkpoint_every=1,
    )
    record = pretrain(cfg)
    assert record["step"] == 2 and 0.0 <= record["cell_acc"] <= 1.0
    cfg.steps = 3
    assert pretrain(cfg)["step"] == 3  # resumed from last.ckpt
    assert len((out / "log.jsonl").read_text().splitlines()) == 3
    trunk = load_file(str(out / "trunk.safetensors"))
    model = build_model("edge-xs")
    load_trunk(model, out)
    for k, v in model.backbone.state_dict().items():
        torch.testing.assert_close(v, trunk[k])
    with pytest.raises(ConfigError, match="does not fit"):
        load_trunk(build_model("edge-s"), out)
    run = tmp_path / "run"
    train(_cfg(tiny_data, run, init_trunk=str(out), steps=1))
    assert (run / "model.safetensors").exists()


@pytest.mark.parametrize("fraction", [0.0, 1.0])
def test_prompt_box_fraction(tiny_data: Path, fraction: float):
    """--prompt-box-fraction 0 gives only point prompts (6-pixel boxes), 1 only boxes."""
    from rapsam_edge.contract.postprocess import POINT_BOX_HALF
    from rapsam_edge.train.batches import PanopticPromptSet

    data = PanopticPromptSet(
        tiny_data / "coco", "train", size=64, num_prompts=6, box_fraction=fraction
    )
    sides = []
    for i in range(4):
        boxes = data[i][2].numpy()
        sides += list(boxes[:, 2] - boxes[:, 0]) + list(boxes[:, 3] - boxes[:, 1])
    is_point = [abs(s - 2 * POINT_BOX_HALF) < 1e-4 for s in sides]
    assert all(is_point) if fraction == 0.0 else not any(is_point)


def test_prompt_box_fraction_out_of_range(tiny_data: Path):
    from rapsam_edge.train.batches import PanopticPromptSet

    with pytest.raises(ValueError, match="prompt_box_fraction"):
        PanopticPromptSet(tiny_data / "coco", "train", size=64, num_prompts=2, box_fraction=1.5)


def test_training_sides_and_their_refusals():
    from rapsam_edge.errors import ConfigError
    from rapsam_edge.train.batches import training_sides

    assert training_sides(320, 0) == (320,)
    assert training_sides(320, 320) == (320,)
    assert training_sides(320, 640) == (320, 352, 384, 416, 448, 480, 512, 544, 576, 608, 640)
    with pytest.raises(ConfigError, match="below"):
        training_sides(640, 320)
    with pytest.raises(ConfigError, match="multiples of 32"):
        training_sides(320, 500)


def test_multi_scale_batches_share_one_side_each(tiny_data: Path, tmp_path: Path):
    """With --max-image-size every batch has one side drawn from the range (panoptic and video
    loaders alike), the sides vary across batches, and a short run trains through them."""
    from rapsam_edge.train.batches import build_loaders

    cfg = _cfg(tiny_data, tmp_path / "run", image_size=64, max_image_size=128, video_every=1)
    pan_loader, vid_loader, _ = build_loaders(cfg)
    seen = set()
    for _ in range(4):
        for batch in pan_loader:
            side = batch.images.shape[-1]
            assert batch.images.shape[-2:] == (side, side)
            assert batch.prompt_masks.shape[-2:] == (side, side)
            assert all(t["masks"].shape[-2:] == (side, side) for t in batch.targets)
            assert batch.prompt_boxes.max() <= side + 3.0  # a point as a +-3 pixel box
            seen.add(side)
    assert seen <= {64, 96, 128} and len(seen) >= 2
    clip = next(iter(vid_loader)).clips
    assert clip.shape[-1] in (64, 96, 128) and clip.shape[-2] == clip.shape[-1]
    train(_cfg(tiny_data, tmp_path / "ms", steps=3, max_image_size=128))
    assert (tmp_path / "ms" / "model.safetensors").exists()


def test_teacher_view_scales_images_and_prompts_down_to_the_teacher_side():
    """--kd-teacher-size: a batch larger than the teacher's side reaches the teacher scaled
    down (images and prompt boxes by the same factor); a batch at or below it is unchanged."""
    from rapsam_edge.train.trainer import _teacher_view

    images = torch.rand(2, 3, 128, 128) * 255
    boxes = torch.tensor([[[10.0, 20.0, 60.0, 100.0]]]).repeat(2, 1, 1)
    small, small_boxes = _teacher_view(images, boxes, 64)
    assert small.shape == (2, 3, 64, 64)
    assert torch.allclose(small_boxes, boxes * 0.5)
    assert abs(float(small.mean()) - float(images.mean())) < 1.0  # a resize, not a crop
    same, same_boxes = _teacher_view(images, boxes, 128)
    assert same is images and same_boxes is boxes
    off, _ = _teacher_view(images, boxes, 0)
    assert off is images


def test_distill_with_a_single_scale_teacher_on_a_multi_scale_run(tiny_data: Path, tmp_path: Path):
    teacher = tmp_path / "teacher"
    train(_cfg(tiny_data, teacher, steps=1))
    out = tmp_path / "student"
    train(
        _cfg(
            tiny_data,
            out,
            steps=2,
            max_image_size=128,
            teacher=str(teacher),
            kd_teacher_size=64,
            kd_object_weight=1.0,
        )
    )
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert all(r["loss_kd_prompt"] > 0 and r["loss_kd_dense"] > 0 for r in rows)
