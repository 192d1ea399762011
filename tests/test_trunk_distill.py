"""Trunk swap by feature distillation (`pretrain --teacher`, issue 14) and the fused variant."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from rapsam_edge.errors import ConfigError
from rapsam_edge.model import build_model
from rapsam_edge.model.io import load_model, save_model
from rapsam_edge.model.mobilenet import FusedInvertedResidual, InvertedResidual
from rapsam_edge.train.distill import load_teacher
from rapsam_edge.train.trunk_distill import (
    TrunkFeatureKD,
    copy_teacher_trunk,
    graft,
    save_grafted,
)


def _randomise_buffers(module: torch.nn.Module, seed: int) -> None:
    """BN statistics and counters away from their defaults, so a copy that skips buffers fails."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, buf in module.named_buffers():
            if name.endswith("running_mean"):
                buf.copy_(torch.randn(buf.shape, generator=g) * 0.1)
            elif name.endswith("running_var"):
                buf.copy_(torch.rand(buf.shape, generator=g) + 0.5)
            elif name.endswith("num_batches_tracked"):
                buf.fill_(int(torch.randint(1, 1000, (1,), generator=g)))


@pytest.fixture(scope="module")
def edge_s_teacher(tmp_path_factory) -> Path:
    """A saved edge-s with non-trivial BN statistics (so copies are checked on every tensor)."""
    torch.manual_seed(0)
    model = build_model("edge-s")
    _randomise_buffers(model, 0)
    out = tmp_path_factory.mktemp("teacher")
    save_model(
        model, out, classes=[{"id": i, "name": f"c{i}", "is_thing": i < 8} for i in range(12)]
    )
    return out


def test_fused_variant_blocks():
    """edge-s-fused: stages 1-4 (features 1-10) Fused-MBConv with expansion <= 2, the rest
    edge-s's inverted residuals; every non-trunk tensor has edge-s's shape."""
    fused, plain = build_model("edge-s-fused"), build_model("edge-s")
    blocks = list(fused.backbone.features)[1:]
    assert all(isinstance(b, FusedInvertedResidual) for b in blocks[:10])
    assert all(isinstance(b, InvertedResidual) for b in blocks[10:])
    assert blocks[3].conv[0][0].out_channels == 2 * blocks[3].conv[0][0].in_channels
    a, b = fused.state_dict(), plain.state_dict()
    assert all(a[k].shape == b[k].shape for k in a if not k.startswith("backbone."))
    assert set(k for k in a if not k.startswith("backbone.")) == set(
        k for k in b if not k.startswith("backbone.")
    )


def test_teacher_trunk_copied_where_shapes_match(edge_s_teacher: Path):
    """Same-shape tensors are copied: an edge-s student reproduces its teacher exactly, and
    the fused student's stages 5-7 do given the teacher's stage-4 output."""
    teacher = load_model(edge_s_teacher).backbone
    same = build_model("edge-s").backbone
    t_trunk, fresh = copy_teacher_trunk(load_teacher(edge_s_teacher), same)
    assert fresh == [] and not any(p.requires_grad for p in t_trunk.parameters())
    x = torch.randn(2, 3, 64, 96)
    same.eval()
    with torch.no_grad():
        for s, t in zip(same(x), teacher(x), strict=True):
            torch.testing.assert_close(s, t, rtol=0, atol=0)

    student = build_model("edge-s-fused").backbone
    _, fresh = copy_teacher_trunk(load_teacher(edge_s_teacher), student)
    assert fresh and all(
        k.startswith("features.") and 1 <= int(k.split(".")[1]) <= 10 for k in fresh
    )
    student.eval()
    h = torch.randn(2, 64, 4, 6)
    with torch.no_grad():
        torch.testing.assert_close(student.features[11:](h), teacher.features[11:](h))


def _break(src: Path, dst: Path, config_text: str) -> Path:
    dst.mkdir()
    (dst / "model.safetensors").write_bytes((src / "model.safetensors").read_bytes())
    (dst / "config.json").write_text(config_text)
    return dst


def test_bad_teachers_are_typed_errors(edge_s_teacher: Path, tmp_path: Path):
    """Wrong widths, a missing directory, an unknown variant, broken JSON, a foreign format
    version and a variant that differs beyond the trunk: ConfigError, never a traceback."""
    teacher = load_teacher(edge_s_teacher)
    with pytest.raises(ConfigError, match="channels"):
        copy_teacher_trunk(teacher, build_model("edge-xs").backbone)
    with pytest.raises(ConfigError, match="no trained model"):
        load_teacher(tmp_path / "missing")
    cfg = json.loads((edge_s_teacher / "config.json").read_text())
    bad_configs = {
        "variant": json.dumps({**cfg, "variant": "edge-xxl"}),
        "json": "{not json",
        "version": json.dumps({**cfg, "format_version": 99}),
    }
    for name, text in bad_configs.items():
        bad = _break(edge_s_teacher, tmp_path / name, text)
        with pytest.raises(ConfigError, match="no trained model"):
            load_teacher(bad)
    with pytest.raises(ConfigError, match="beyond the trunk"):
        graft(teacher, "edge-xs")
    with pytest.raises(ConfigError, match="unknown variant"):
        graft(teacher, "edge-xxl")
    graft(teacher, "edge-s-fused")


def test_feature_kd_loss_values(edge_s_teacher: Path):
    """Relative squared error per tap, summed: 0 against itself; student = 2 x teacher gives
    1 per tap (4 taps -> 4); stats are the per-tap means since the last call."""
    trunk = load_model(edge_s_teacher).backbone
    kd = TrunkFeatureKD(trunk)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        feats = trunk(x)
    assert float(kd.loss(x, feats)) == 0.0
    loss = kd.loss(x, [2 * f for f in feats])
    torch.testing.assert_close(loss, torch.tensor(4.0))
    stats = kd.stats()
    assert stats == {"rel_err_c2": 0.5, "rel_err_c3": 0.5, "rel_err_c4": 0.5, "rel_err_c5": 0.5}
    assert kd.stats()["rel_err_c2"] == 0.0  # reset


def test_grafted_model_keeps_the_teachers_head(edge_s_teacher: Path, tmp_path: Path):
    teacher = load_model(edge_s_teacher)
    trunk = build_model("edge-s-fused").backbone
    _randomise_buffers(trunk, 1)
    save_grafted(graft(teacher, "edge-s-fused"), trunk, tmp_path / "g")
    grafted = load_model(tmp_path / "g")
    cfg = json.loads((tmp_path / "g" / "config.json").read_text())
    assert cfg["variant"] == "edge-s-fused" and cfg["classes"][0]["name"] == "c0"
    t, g = teacher.state_dict(), grafted.state_dict()
    for k, v in g.items():
        ref = trunk.state_dict()[k[len("backbone.") :]] if k.startswith("backbone.") else t[k]
        torch.testing.assert_close(v, ref, rtol=0, atol=0)
    with pytest.raises(ConfigError, match="beyond the trunk"):
        graft(teacher, "edge-xs")


def test_pretrain_with_teacher_writes_a_trainable_model(edge_s_teacher: Path, tmp_path: Path):
    """`pretrain --teacher`: the run resumes from its own checkpoint (not from the teacher's
    tensors again), refuses a checkpoint of another teacher, and its model directory loads
    for fine-tuning."""
    from rapsam_edge.train.config import PretrainConfig
    from rapsam_edge.train.pretrain import pretrain

    out = tmp_path / "graft"
    cfg = PretrainConfig(
        variant="edge-s-fused",
        teacher=str(edge_s_teacher),
        out=str(out),
        steps=2,
        batch_size=2,
        image_size=64,
        workers=0,
        log_every=1,
        checkpoint_every=1,
    )
    record = pretrain(cfg)
    assert record["step"] == 2 and record["rel_err_c3"] > 0
    # mark a copied tensor in the checkpoint: a resume that re-copied the teacher would lose it
    state = torch.load(out / "last.ckpt", map_location="cpu", weights_only=True)
    key = "features.17.conv.2.weight"
    state["trunk"][key] += 1.0
    marked = state["trunk"][key].clone()
    torch.save(state, out / "last.ckpt")
    cfg.steps = 3
    assert pretrain(cfg)["step"] == 3
    at_3 = torch.load(out / "last.ckpt", map_location="cpu", weights_only=True)["trunk"]
    assert (at_3[key] - marked).abs().max() < 0.05  # one small AdamW step from the mark
    other = tmp_path / "other"  # a valid teacher, but not this run's
    other.mkdir()
    for f in ("model.safetensors", "config.json"):
        (other / f).write_bytes((edge_s_teacher / f).read_bytes())
    cfg.teacher = str(other)
    cfg.steps = 4
    with pytest.raises(ConfigError, match="written with teacher"):
        pretrain(cfg)
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3]
    assert json.loads((out / "config.json").read_text())["variant"] == "edge-s-fused"
    model = load_model(out)
    trunk = torch.load(out / "last.ckpt", map_location="cpu", weights_only=True)["trunk"]
    for k, v in model.backbone.state_dict().items():
        torch.testing.assert_close(v, trunk[k])


def test_feature_kd_learns(edge_s_teacher: Path):
    """A few optimizer steps on one batch lower the feature loss of the fused trunk."""
    torch.manual_seed(0)
    student = build_model("edge-s-fused").backbone
    t_trunk, _ = copy_teacher_trunk(load_teacher(edge_s_teacher), student)
    kd = TrunkFeatureKD(t_trunk)
    opt = torch.optim.Adam(student.parameters(), lr=1e-3)
    x = torch.randn(4, 3, 64, 64)
    losses = []
    for _ in range(8):
        loss = kd.loss(x, student(x))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss))
    assert losses[-1] < 0.85 * losses[0]
