"""Distillation (issue 13): the KD losses do not depend on query order and vanish for a
teacher distilling itself; `rapsam-edge distill` trains, checkpoints, resumes and runs under
DDP like `train`."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from rapsam_edge.cli import main as cli  # noqa: E402
from rapsam_edge.data.generate import make_dataset  # noqa: E402
from rapsam_edge.train.config import TrainConfig  # noqa: E402
from rapsam_edge.train.distill import (  # noqa: E402
    DistillWeights,
    dense_class_map,
    distill_losses,
    object_class_kd,
)
from rapsam_edge.train.trainer import train  # noqa: E402


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(dataset, a 2-step edge-xs teacher run)."""
    root = tmp_path_factory.mktemp("kd")
    make_dataset(
        root / "data",
        seed=7,
        split="train",
        num_images=6,
        num_videos=2,
        video_length=4,
        image_size=(64, 64),
        progress=False,
    )
    teacher = root / "teacher"
    train(_cfg(root / "data", teacher, steps=2))
    return root / "data", teacher


def _cfg(data: Path, out: Path, **kw) -> TrainConfig:
    base = dict(
        variant="edge-xs",
        data=str(data),
        out=str(out),
        steps=2,
        batch_size=2,
        image_size=64,
        prompts_per_image=2,
        video_every=2,
        video_batch_size=1,
        num_points=128,
        workers=0,
        warmup_steps=1,
        checkpoint_every=1,
        log_every=1,
        threads=1,
    )
    base.update(kw)
    return TrainConfig(**base)


def test_dense_map_is_a_distribution_and_query_order_free():
    g = torch.Generator().manual_seed(0)
    cls = torch.randn(2, 7, 5, generator=g)
    masks = torch.randn(2, 7, 6, 9, generator=g) * 4
    d = dense_class_map(cls, masks)
    assert d.shape == (2, 6, 6, 9)
    torch.testing.assert_close(d.sum(1), torch.ones(2, 6, 9))
    perm = torch.randperm(7, generator=g)
    torch.testing.assert_close(dense_class_map(cls[:, perm], masks[:, perm]), d)


def _outs(cls, masks, prompt, feats):
    return {
        "panoptic": {"cls_logits": cls, "mask_logits": masks},
        "prompts": {"mask_logits": prompt},
        "feats": feats,
    }


def test_kd_losses_vanish_for_the_teacher_itself_and_not_otherwise():
    g = torch.Generator().manual_seed(1)
    cls, masks = torch.randn(1, 4, 3, generator=g), torch.randn(1, 4, 8, 8, generator=g)
    prompt, feats = torch.randn(1, 2, 8, 8, generator=g), torch.randn(1, 6, 8, 8, generator=g)
    t = _outs(cls, masks, prompt, feats)
    perm = torch.tensor([2, 0, 3, 1])
    same = distill_losses(
        _outs(cls[:, perm], masks[:, perm], prompt, feats), t, feats, DistillWeights()
    )
    assert float(same["loss_kd_dense"]) < 1e-5
    assert float(same["loss_kd_feat"]) < 1e-6
    other = distill_losses(_outs(-cls, masks, -prompt, feats), t, feats * 0.5, DistillWeights())
    assert float(other["loss_kd_dense"]) > 1e-2
    assert float(other["loss_kd_prompt"]) > float(same["loss_kd_prompt"])
    assert float(other["loss_kd_feat"]) > 0.2
    # a coarser student (other stride) is resized to the teacher's map
    coarse = distill_losses(
        _outs(cls, masks[..., ::2, ::2], prompt[..., ::2, ::2], feats[..., ::2, ::2]),
        t,
        feats[..., ::2, ::2],
        DistillWeights(),
    )
    assert all(torch.isfinite(v) for v in coarse.values())


def _objects(g, n=6, classes=4, size=12):
    """Teacher-like outputs: queries 0-2 confident objects with their own masks, the rest
    no-object."""
    cls = torch.randn(1, n, classes + 1, generator=g)
    cls[0, 3:, -1] += 8.0
    for q in range(3):
        cls[0, q, q] += 8.0
    masks = torch.full((1, n, size, size), -6.0)
    for q in range(n):
        masks[0, q, 2 * q : 2 * q + 4, :] = 6.0
    return cls, masks


def test_object_kd_is_query_order_free_and_vanishes_for_the_teacher_itself():
    g = torch.Generator().manual_seed(3)
    cls, masks = _objects(g)
    kd = dict(temperature=2.0, num_points=256)
    assert float(object_class_kd(cls, masks, cls, masks, **kd)) < 1e-5
    perm = torch.tensor([4, 2, 0, 5, 1, 3])
    # either model's queries permuted: the matching finds the same pairs
    assert float(object_class_kd(cls[:, perm], masks[:, perm], cls, masks, **kd)) < 1e-5
    other = cls.clone()
    other[0, :3, :-1] = other[0, :3, :-1].flip(-1)  # the objects named differently
    loss = object_class_kd(other[:, perm], masks[:, perm], cls, masks, **kd)
    reference = object_class_kd(other, masks, cls, masks, **kd)
    assert float(loss) > 1.0
    torch.testing.assert_close(loss, reference)
    # a student with more queries (extra no-object ones) and a coarser mask stride: the
    # teacher's objects still find their twins
    perm9 = torch.randperm(9, generator=g)
    wide = torch.cat((cls, cls[:, 3:]), 1)[:, perm9]
    wide_masks = torch.cat((masks, masks[:, 3:]), 1)[:, perm9][..., ::2, ::2]
    assert abs(float(object_class_kd(wide, wide_masks, cls, masks, **kd))) < 1e-5


def test_object_kd_equals_the_hand_computed_value():
    """T^2 KL(softmax(t / T) || softmax(s / T)) per matched pair, summed, over the teacher's
    object count; with crisp, disjoint masks the pairs are the queries with the same mask."""
    g = torch.Generator().manual_seed(5)
    cls, masks = _objects(g)
    student = torch.randn(1, 6, 5, generator=g)
    for temperature in (1.0, 3.0):
        p = (cls[0, :3] / temperature).softmax(-1)
        q = (student[0, :3] / temperature).softmax(-1)
        expected = temperature**2 * (p * (p.log() - q.log())).sum() / 3
        got = object_class_kd(student, masks, cls, masks, temperature=temperature)
        torch.testing.assert_close(got, expected)
    # a student with fewer queries than the teacher has objects: two pairs, over 3 objects
    few = object_class_kd(student[:, :2], masks[:, :2], cls, masks, temperature=2.0)
    p, q = (cls[0, :2] / 2).softmax(-1), (student[0, :2] / 2).softmax(-1)
    torch.testing.assert_close(few, 4 * (p * (p.log() - q.log())).sum() / 3)
    with pytest.raises(ValueError, match="temperature"):
        object_class_kd(student, masks, cls, masks, temperature=0.0)


def test_object_kd_without_teacher_objects_is_zero_with_a_gradient_path():
    g = torch.Generator().manual_seed(4)
    cls, masks = _objects(g)
    empty = cls.clone()
    empty[..., -1] += 30.0  # the teacher sees nothing
    student = cls.clone().requires_grad_(True)
    loss = object_class_kd(student, masks, empty, masks, temperature=2.0)
    assert float(loss) == 0.0
    loss.backward()
    assert student.grad is not None and float(student.grad.abs().sum()) == 0.0
    student.grad = None
    teacher = cls.clone().requires_grad_(True)
    object_class_kd(student, masks, teacher, masks, temperature=1.0).backward()
    assert float(student.grad.abs().sum()) > 0.0
    assert teacher.grad is None  # the teacher's logits are a target, never trained


@pytest.fixture(scope="module")
def confident_teacher(tiny, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny teacher with its class heads biased to class 0, so every query is an object
    (a 2-step teacher has none, which would leave the object term 0 and the matching idle)."""
    from rapsam_edge.model.heads import LinearClassifier
    from rapsam_edge.model.io import load_model, save_model

    model = load_model(tiny[1])
    heads = [m for m in model.modules() if isinstance(m, LinearClassifier)]
    assert heads
    with torch.no_grad():
        for head in heads:
            head.fc.bias[0] += 20.0
    out = tmp_path_factory.mktemp("confident")
    save_model(model, out)
    return out


def test_object_kd_only_run_resumes_a_plain_checkpoint(tiny, confident_teacher, tmp_path):
    """Without feature KD there is no adapter, so a no-teacher run's checkpoint resumes into
    distillation: the distilled and plain arms can share their first steps."""
    import json

    data, plain = tiny
    cfg = _cfg(
        data,
        tmp_path / "obj",
        steps=3,
        teacher=str(confident_teacher),
        resume_from=str(plain / "last.ckpt"),
        kd_feat_weight=0.0,
        kd_object_weight=1.0,
    )
    train(cfg)
    log = [json.loads(x) for x in (tmp_path / "obj" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [3]
    assert log[-1]["loss_kd_object"] > 0.1 and log[-1]["loss_kd_feat"] == 0.0
    heads = torch.load(tmp_path / "obj" / "last.ckpt", weights_only=True)["heads"]
    assert not any(k.startswith("feat_adapter") for k in heads)


def test_distill_cli_trains_checkpoints_and_resumes(tiny, tmp_path, capsys):
    data, teacher = tiny
    out = tmp_path / "student"
    argv = [
        "distill",
        "--teacher",
        str(teacher),
        "--student",
        "edge-xs",
        "--data",
        str(data),
        "--out",
        str(out),
        "--steps",
        "2",
        "--batch-size",
        "2",
        "--image-size",
        "64",
        "--prompts-per-image",
        "2",
        "--video-batch-size",
        "1",
        "--num-points",
        "128",
        "--workers",
        "0",
        "--warmup-steps",
        "1",
        "--checkpoint-every",
        "1",
        "--log-every",
        "1",
        "--threads",
        "1",
    ]
    assert cli(argv) == 0
    import json

    log = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    assert {"loss_kd_dense", "loss_kd_prompt", "loss_kd_feat"} <= set(log[-1])
    state = torch.load(out / "last.ckpt", weights_only=True)
    assert any(k.startswith("feat_adapter") for k in state["heads"])
    argv[argv.index("--steps") + 1] = "3"
    assert cli(argv) == 0  # resumes at step 2
    log = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3]


def test_distill_needs_a_matching_teacher(tiny, tmp_path, capsys):
    data, _ = tiny
    assert cli(["distill", "--student", "edge-xs", "--data", str(data)]) == 2
    assert "--teacher" in capsys.readouterr().err
    from rapsam_edge.model import build_model
    from rapsam_edge.model.io import save_model

    save_model(build_model("edge-xs", num_classes=5), tmp_path / "t5")
    with pytest.raises(Exception, match="5 classes"):
        train(_cfg(data, tmp_path / "s", teacher=str(tmp_path / "t5")))
    from rapsam_edge.errors import ConfigError

    for bad in ({"kd_temperature": 0.0}, {"kd_object_weight": -1.0}, {"kd_feat_weight": -0.5}):
        with pytest.raises(ConfigError):
            train(_cfg(data, tmp_path / "bad", **bad))


@pytest.mark.parametrize(
    "kd",
    [{}, {"kd_feat_weight": 0.0, "kd_object_weight": 1.0}],
    ids=["default-terms", "object-term-no-adapter"],
)
def test_distill_under_ddp_two_processes_end_identical(tiny, confident_teacher, tmp_path, kd):
    from rapsam_edge.train.ddp_check import ddp_rank_weights

    data, teacher = tiny
    if kd:
        teacher = confident_teacher
    cfg = _cfg(
        data, tmp_path / "ddp", steps=2, video_every=0, batch_size=1, teacher=str(teacher), **kd
    )
    a, b = ddp_rank_weights(cfg, world=2)
    for key in a:
        assert torch.equal(a[key], b[key]), key
