"""Bad arguments raise rapsam_edge.errors.InputError (a ValueError) naming the argument,
identically for the compiled core and the numpy twins (the arguments are checked once, in
rapsam_edge.ops._checks, before either runs), wrongly typed scalars included; nothing crashes
on NaN, empty or huge inputs."""

from __future__ import annotations

import numpy as np
import pytest

import rapsam_edge.ops as ops
from rapsam_edge import _core  # a missing core must fail these tests, not skip them
from rapsam_edge.errors import InputError
from rapsam_edge.ops import _numpy as twin

# the compiled core as the ops run it: behind the one set of argument checks
IMPLS = {"cpp": ops.impl("cpp"), "numpy": twin}

F32 = np.float32
CLS = np.zeros((3, 4), F32)
MASKS = np.zeros((3, 8, 8), F32)
THING = np.array([True, False, True])
IMAGE = np.zeros((20, 30, 3), np.uint8)
LABELS = np.zeros((20, 30), np.int32)


def nan_like(a):
    a = a.copy()
    a.flat[-1] = np.nan
    return a


def inf_like(a):
    a = a.copy()
    a.flat[0] = -np.inf
    return a


def _panoptic(**kw):
    args = {
        "cls_logits": CLS,
        "mask_logits": MASKS,
        "valid_hw": (8, 8),
        "out_hw": (16, 16),
        "is_thing": THING,
    }
    args.update(kw)
    return "panoptic_fuse", args


def _prompt(**kw):
    args = {"mask_logits": MASKS, "valid_hw": (8, 8), "out_hw": (16, 16)}
    args.update(kw)
    return "prompt_masks", args


def _letterbox(**kw):
    args = {"image": IMAGE, "size": 64}
    args.update(kw)
    return "letterbox", args


def _overlay(**kw):
    args = {"image": IMAGE, "labels": LABELS}
    args.update(kw)
    return "overlay", args


# (op, kwargs, word the ValueError message must contain)
CASES = {
    # panoptic_fuse
    "pan_cls_dtype": (*_panoptic(cls_logits=CLS.astype(np.float64)), "cls_logits"),
    "pan_cls_ndim": (*_panoptic(cls_logits=CLS[0]), "cls_logits"),
    "pan_cls_noncontig": (*_panoptic(cls_logits=np.zeros((4, 3), F32).T), "cls_logits"),
    "pan_cls_nan": (*_panoptic(cls_logits=nan_like(CLS)), "cls_logits"),
    "pan_cls_inf": (*_panoptic(cls_logits=inf_like(CLS)), "cls_logits"),
    "pan_cls_list": (*_panoptic(cls_logits=CLS.tolist()), "cls_logits"),
    "pan_cls_no_column": (*_panoptic(cls_logits=np.zeros((3, 0), F32)), "cls_logits"),
    "pan_masks_dtype": (*_panoptic(mask_logits=MASKS.astype(np.float16)), "mask_logits"),
    "pan_masks_ndim": (*_panoptic(mask_logits=MASKS[0]), "mask_logits"),
    "pan_masks_noncontig": (
        *_panoptic(mask_logits=np.zeros((3, 8, 16), F32)[:, :, ::2]),
        "mask_logits",
    ),
    "pan_masks_nan": (*_panoptic(mask_logits=nan_like(MASKS)), "mask_logits"),
    "pan_masks_count": (*_panoptic(mask_logits=MASKS[:2]), "mask_logits"),
    "pan_masks_empty": (*_panoptic(mask_logits=np.zeros((3, 0, 8), F32)), "mask_logits"),
    "pan_out_zero": (*_panoptic(out_hw=(0, 16)), "out_hw"),
    "pan_out_huge": (*_panoptic(out_hw=(16, 40000)), "out_hw"),
    "pan_out_float": (*_panoptic(out_hw=(16.0, 16)), "out_hw"),
    "pan_out_scalar": (*_panoptic(out_hw=16), "out_hw"),
    "pan_out_triple": (*_panoptic(out_hw=(16, 16, 3)), "out_hw"),
    "pan_valid_big": (*_panoptic(valid_hw=(9, 8)), "valid_hw"),
    "pan_valid_zero": (*_panoptic(valid_hw=(0, 8)), "valid_hw"),
    "pan_valid_nan": (*_panoptic(valid_hw=(float("nan"), 8)), "valid_hw"),
    "pan_valid_inf": (*_panoptic(valid_hw=(8, float("inf"))), "valid_hw"),
    "pan_valid_len": (*_panoptic(valid_hw=(8,)), "valid_hw"),
    "pan_valid_str": (*_panoptic(valid_hw="ab"), "valid_hw"),
    "pan_valid_none": (*_panoptic(valid_hw=(None, 8)), "valid_hw"),
    "pan_valid_huge_int": (*_panoptic(valid_hw=(10**400, 8)), "valid_hw"),
    "pan_is_thing_len": (*_panoptic(is_thing=THING[:2]), "is_thing"),
    "pan_is_thing_2d": (*_panoptic(is_thing=THING[None]), "is_thing"),
    "pan_is_thing_ragged": (*_panoptic(is_thing=[[1], [1, 0]]), "is_thing"),
    "pan_score_str": (*_panoptic(score_threshold="0.5"), "score_threshold"),
    "pan_score_none": (*_panoptic(score_threshold=None), "score_threshold"),
    "pan_score_huge_int": (*_panoptic(score_threshold=10**400), "score_threshold"),
    "pan_overlap_list": (*_panoptic(overlap_threshold=[0.5]), "overlap_threshold"),
    "pan_score_nan": (*_panoptic(score_threshold=float("nan")), "score_threshold"),
    "pan_score_inf": (*_panoptic(score_threshold=float("inf")), "score_threshold"),
    "pan_score_above_1": (*_panoptic(score_threshold=5.0), "score_threshold"),
    "pan_score_negative": (*_panoptic(score_threshold=-1.0), "score_threshold"),
    "pan_score_bool": (*_panoptic(score_threshold=True), "score_threshold"),
    "pan_overlap_nan": (*_panoptic(overlap_threshold=float("nan")), "overlap_threshold"),
    "pan_overlap_inf": (*_panoptic(overlap_threshold=-float("inf")), "overlap_threshold"),
    "pan_overlap_above_1": (*_panoptic(overlap_threshold=1.5), "overlap_threshold"),
    "pan_overlap_negative": (*_panoptic(overlap_threshold=-0.1), "overlap_threshold"),
    # prompt_masks
    "pr_dtype": (*_prompt(mask_logits=MASKS.astype(np.float64)), "mask_logits"),
    "pr_ndim": (*_prompt(mask_logits=MASKS[0]), "mask_logits"),
    "pr_noncontig": (*_prompt(mask_logits=MASKS.transpose(0, 2, 1)), "mask_logits"),
    "pr_nan": (*_prompt(mask_logits=nan_like(MASKS)), "mask_logits"),
    "pr_empty": (*_prompt(mask_logits=np.zeros((2, 8, 0), F32)), "mask_logits"),
    "pr_out": (*_prompt(out_hw=(-1, 5)), "out_hw"),
    "pr_out_big": (*_prompt(out_hw=(32769, 5)), "out_hw"),
    "pr_valid": (*_prompt(valid_hw=(8, -1)), "valid_hw"),
    "pr_threshold_nan": (*_prompt(threshold=float("nan")), "threshold"),
    "pr_threshold_inf": (*_prompt(threshold=float("inf")), "threshold"),
    "pr_offset_neg": (*_prompt(stability_offset=-0.5), "stability_offset"),
    "pr_offset_nan": (*_prompt(stability_offset=float("nan")), "stability_offset"),
    "pr_threshold_str": (*_prompt(threshold="0"), "threshold"),
    "pr_threshold_complex": (*_prompt(threshold=1j), "threshold"),
    "pr_offset_list": (*_prompt(stability_offset=[1.0]), "stability_offset"),
    "pr_offset_inf": (*_prompt(stability_offset=float("inf")), "stability_offset"),
    # letterbox
    "lb_dtype": (*_letterbox(image=IMAGE.astype(np.float32)), "image"),
    "lb_ndim": (*_letterbox(image=IMAGE[None]), "image"),
    "lb_channels": (*_letterbox(image=np.zeros((4, 4, 5), np.uint8)), "image"),
    "lb_empty": (*_letterbox(image=np.zeros((0, 4, 3), np.uint8)), "image"),
    "lb_noncontig": (*_letterbox(image=IMAGE[:, ::2]), "image"),
    "lb_huge": (*_letterbox(image=np.zeros((1, 32769), np.uint8)), "image"),
    "lb_not_array": (*_letterbox(image=[[1, 2]]), "image"),
    "lb_size_zero": (*_letterbox(size=0), "size"),
    "lb_size_big": (*_letterbox(size=(64, 40000)), "size"),
    "lb_size_float": (*_letterbox(size=64.0), "size"),
    "lb_pad_divisor": (*_letterbox(pad_divisor=0), "pad_divisor"),
    "lb_pad_divisor_big": (*_letterbox(pad_divisor=5000), "pad_divisor"),
    "lb_pad_value": (*_letterbox(pad_value=256), "pad_value"),
    "lb_pad_divisor_str": (*_letterbox(pad_divisor="32"), "pad_divisor"),
    "lb_pad_divisor_float": (*_letterbox(pad_divisor=32.0), "pad_divisor"),
    "lb_pad_divisor_huge": (*_letterbox(pad_divisor=2**70), "pad_divisor"),
    "lb_pad_value_none": (*_letterbox(pad_value=None), "pad_value"),
    "lb_pad_value_negative_np": (*_letterbox(pad_value=np.int64(-1)), "pad_value"),
    "lb_swap_str": (*_letterbox(swap_rb="yes"), "swap_rb"),
    "lb_swap_none": (*_letterbox(swap_rb=None), "swap_rb"),
    "lb_swap_gray": (*_letterbox(image=IMAGE[:, :, 0].copy(), swap_rb=True), "swap_rb"),
    # masks / RLE / assignment / overlay
    "boxes_dtype": ("masks_to_boxes", {"masks": np.zeros((2, 3, 3), np.int32)}, "masks"),
    "boxes_ndim": ("masks_to_boxes", {"masks": np.zeros(3, bool)}, "masks"),
    "boxes_list": ("masks_to_boxes", {"masks": [[True]]}, "masks"),
    "rle_enc_dtype": ("rle_encode", {"mask": np.zeros((3, 3), np.float32)}, "mask"),
    "rle_enc_ndim": ("rle_encode", {"mask": np.zeros((1, 1, 3, 3), bool)}, "mask"),
    "rle_dec_not_dict": ("rle_decode", {"rle": "12200"}, "rle"),
    "rle_dec_missing": ("rle_decode", {"rle": {"size": [3, 3]}}, "rle"),
    "rle_dec_empty_list": ("rle_decode", {"rle": []}, "rle"),
    "rle_dec_bad_char": ("rle_decode", {"rle": {"size": [3, 3], "counts": b"12 00"}}, "rle"),
    "rle_dec_high_char": ("rle_decode", {"rle": {"size": [3, 3], "counts": b"12\x7f"}}, "rle"),
    "rle_dec_non_ascii": ("rle_decode", {"rle": {"size": [3, 3], "counts": b"\xff\xfe"}}, "rle"),
    "rle_dec_truncated": ("rle_decode", {"rle": {"size": [3, 3], "counts": b"12200o"}}, "rle"),
    "rle_dec_sum": ("rle_decode", {"rle": {"size": [3, 4], "counts": b"12200"}}, "rle"),
    "rle_dec_negative": ("rle_decode", {"rle": {"size": [3, 3], "counts": [5, -1, 5]}}, "rle"),
    "rle_dec_neg_string": ("rle_decode", {"rle": {"size": [2, 2], "counts": b"1`0"}}, "rle"),
    "rle_dec_neg_size": ("rle_decode", {"rle": {"size": [-3, 3], "counts": b"0"}}, "rle"),
    "rle_dec_size_str": ("rle_decode", {"rle": {"size": ["a", 3], "counts": b"0"}}, "rle"),
    "rle_dec_size_int": ("rle_decode", {"rle": {"size": 3, "counts": b"0"}}, "rle"),
    "rle_dec_size_three": ("rle_decode", {"rle": {"size": [1, 1, 1], "counts": b"1"}}, "rle"),
    "rle_dec_size_huge": ("rle_decode", {"rle": {"size": [2**70, 1], "counts": b"0"}}, "rle"),
    "rle_dec_counts_int": ("rle_decode", {"rle": {"size": [1, 1], "counts": 5}}, "rle"),
    "rle_dec_counts_items": ("rle_decode", {"rle": {"size": [1, 1], "counts": ["x"]}}, "rle"),
    "rle_dec_counts_unicode": ("rle_decode", {"rle": {"size": [1, 1], "counts": "1\u00e9"}}, "rle"),
    "rle_dec_sizes_differ": (
        "rle_decode",
        {"rle": [{"size": [1, 1], "counts": b"1"}, {"size": [1, 2], "counts": b"2"}]},
        "RLEs",
    ),
    "la_nan": ("linear_assignment", {"cost": np.array([[1.0, np.nan]])}, "cost"),
    "la_neg_inf": ("linear_assignment", {"cost": np.array([[1.0, -np.inf]])}, "cost"),
    "la_pos_inf_max": (
        "linear_assignment",
        {"cost": np.array([[np.inf, 1.0]]), "maximize": True},
        "cost",
    ),
    "la_infeasible": ("linear_assignment", {"cost": np.full((2, 2), np.inf)}, "cost"),
    "la_ndim": ("linear_assignment", {"cost": np.zeros(3)}, "cost"),
    "la_dtype": ("linear_assignment", {"cost": np.zeros((2, 2), complex)}, "cost"),
    "la_list": ("linear_assignment", {"cost": [[1.0]]}, "cost"),
    "la_maximize_str": ("linear_assignment", {"cost": np.eye(2), "maximize": "yes"}, "maximize"),
    "la_maximize_none": ("linear_assignment", {"cost": np.eye(2), "maximize": None}, "maximize"),
    "ov_gray": (*_overlay(image=IMAGE[:, :, 0].copy()), "image"),
    "ov_labels_dtype": (*_overlay(labels=LABELS.astype(np.int64)), "labels"),
    "ov_labels_shape": (*_overlay(labels=LABELS[:5]), "labels"),
    "ov_alpha": (*_overlay(alpha=1.5), "alpha"),
    "ov_alpha_nan": (*_overlay(alpha=float("nan")), "alpha"),
    "ov_alpha_str": (*_overlay(alpha="0.5"), "alpha"),
    "ov_alpha_bool": (*_overlay(alpha=True), "alpha"),
    "ov_boundary_str": (*_overlay(boundary="no"), "boundary"),
    "ov_boundary_float": (*_overlay(boundary=1.0), "boundary"),
}

# every message is the same word for word in both twins (bad bytes are printed in hex)
TEXT_DIFFERS: set[str] = set()


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("case", CASES)
def test_bad_argument_raises_input_error(impl, case):
    op, kwargs, word = CASES[case]
    with pytest.raises(InputError, match=word) as info:
        getattr(IMPLS[impl], op)(**kwargs)
    assert isinstance(info.value, ValueError)  # existing `except ValueError` keeps working


@pytest.mark.parametrize("case", CASES)
def test_same_message_in_both(case):
    op, kwargs, _ = CASES[case]
    messages = []
    for impl in IMPLS.values():
        with pytest.raises(InputError) as info:
            getattr(impl, op)(**kwargs)
        messages.append(str(info.value))
    # the argument named first in the message is the same
    assert messages[0].split()[0] == messages[1].split()[0], messages
    if case not in TEXT_DIFFERS:
        assert messages[0] == messages[1]


def test_every_op_has_bad_input_cases():
    assert {op for op, _, _ in CASES.values()} == set(ops.OP_NAMES)


@pytest.mark.parametrize("impl", ["cpp", "numpy"])
@pytest.mark.parametrize("case", ["lb_pad_divisor_str", "pan_score_none", "la_maximize_str"])
def test_dispatcher_raises_input_error(impl, case):
    op, kwargs, word = CASES[case]
    before = ops.implementation()
    try:
        ops.use(impl)
        with pytest.raises(InputError, match=word):
            getattr(ops, op)(**kwargs)
    finally:
        ops.use(before)


@pytest.mark.parametrize("bad", [0, -1, 257, 2**70, "2", 2.0, None])
def test_set_num_threads_rejects_bad_n(bad):
    before = _core.get_num_threads()
    with pytest.raises(InputError, match=r"^n must be") as info:
        ops.set_num_threads(bad)
    assert isinstance(info.value, ValueError)
    if isinstance(bad, int) and abs(bad) < 2**31:  # the core's own range check (C++ callers)
        with pytest.raises(InputError, match=r"^n must be an integer in \[1, 256\]"):
            _core.set_num_threads(bad)
    assert _core.get_num_threads() == before


@pytest.mark.parametrize("impl", IMPLS)
def test_valid_edge_inputs_do_not_crash(impl):
    ops = IMPLS[impl]
    huge = np.full((3, 8, 8), 1e30, F32)
    huge[1] = -3e38
    label, _ = ops.panoptic_fuse(CLS, huge, (8, 8), (16, 16), THING, score_threshold=0.0)
    assert label.shape == (16, 16)
    masks, stab = ops.prompt_masks(huge, (8, 8), (3, 3))
    assert masks.shape == (3, 3, 3) and stab.shape == (3,)
    assert ops.letterbox(np.zeros((1, 1), np.uint8), 1)[0].shape == (32, 32)
    assert ops.masks_to_boxes(np.zeros((0, 4, 4), bool)).shape == (0, 4)
    rows, _ = ops.linear_assignment(np.zeros((0, 3)))
    assert rows.shape == (0,)
    np.testing.assert_array_equal(ops.linear_assignment(np.array([[True, False]]))[1], [1])


def test_both_agree_on_valid_unusual_arguments():
    # numpy integer sizes, list is_thing, int thresholds, tuple/list pairs
    args = (CLS, MASKS + 1, [np.int64(8), 7.5], (np.int32(5), 9), [1, 0, 1])
    a, b = (
        twin.panoptic_fuse(*args, score_threshold=0),
        _core.panoptic_fuse(*args, score_threshold=0),
    )
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1]["area"], b[1]["area"])
    for size in (np.int64(40), [40, 50], (True, 30)):
        np.testing.assert_array_equal(
            twin.letterbox(IMAGE, size)[0], _core.letterbox(IMAGE, size)[0]
        )


def test_invalid_rle_bytes_same_message_in_both_twins():
    rle = {"size": [3, 3], "counts": b"1\xff2"}
    messages = set()
    for impl in IMPLS.values():
        with pytest.raises(InputError) as e:
            impl.rle_decode(rle)
        messages.add(str(e.value))
    assert messages == {"rle counts has an invalid byte 0xff at 1"}


@pytest.mark.parametrize("impl", IMPLS)
def test_segment_records_are_deterministic_bytes(impl):
    """No uninitialised padding in the structured segment records (both twins)."""
    rng = np.random.default_rng(0)
    cls = rng.standard_normal((6, 4)).astype(F32) * 4
    masks = rng.standard_normal((6, 8, 8)).astype(F32)
    outs = [IMPLS[impl].panoptic_fuse(cls, masks, (8, 8), (16, 16), THING, 0.2, 0.2)[1]]
    _ = [np.full(4096, 0xAB, np.uint8) for _ in range(64)]  # dirty the allocator
    outs.append(IMPLS[impl].panoptic_fuse(cls, masks, (8, 8), (16, 16), THING, 0.2, 0.2)[1])
    assert len(outs[0]) > 0
    assert outs[0].tobytes() == outs[1].tobytes()
    raw = outs[0].view(np.uint8).reshape(len(outs[0]), -1)
    assert not raw[:, 25:].any()  # the 7 padding bytes after is_thing


# the raw core (rapsam_edge._core) is called with valid arguments only (rapsam_edge.ops checks
# them once); what remains in it are guards where a wrong array would be read or written out
# of bounds: those raise, they never crash
RAW_CORE_GUARDS = {
    "pan_mask_count": ("panoptic_fuse", (CLS, MASKS[:2], (8, 8), (16, 16), THING)),
    "pan_is_thing_len": ("panoptic_fuse", (CLS, MASKS, (8, 8), (16, 16), THING[:1])),
    "pan_cls_1d": ("panoptic_fuse", (CLS[0], MASKS, (8, 8), (16, 16), THING)),
    "pan_valid_big": ("panoptic_fuse", (CLS, MASKS, (9, 8), (16, 16), THING)),
    "pan_out_zero": ("panoptic_fuse", (CLS, MASKS, (8, 8), (0, 16), THING)),
    "pr_2d": ("prompt_masks", (MASKS[0], (8, 8), (16, 16))),
    "lb_4d": ("letterbox", (IMAGE[None], 64)),
    "lb_channels": ("letterbox", (np.zeros((4, 4, 5), np.uint8), 8)),
    "boxes_int32": ("masks_to_boxes", (np.zeros((2, 3, 3), np.int32),)),
    "rle_size_sum": ("rle_decode", ({"size": [3, 4], "counts": b"12200"},)),
    "la_1d": ("linear_assignment", (np.zeros(3),)),
    "ov_labels_shape": ("overlay", (IMAGE, LABELS[:5])),
    "ov_gray": ("overlay", (IMAGE[:, :, 0].copy(), LABELS)),
}


@pytest.mark.parametrize("case", RAW_CORE_GUARDS)
def test_raw_core_guards_out_of_bounds_access(case):
    op, args = RAW_CORE_GUARDS[case]
    with pytest.raises((InputError, TypeError)):
        getattr(_core, op)(*args)


# ---------------------------------------------------------------- the tracker, an op too
def test_probability_thresholds_at_their_bounds_are_accepted():
    for impl in IMPLS.values():
        for score, overlap in ((0.0, 0.0), (1.0, 1.0), (0, 1), (np.float32(0.5), np.float64(0.5))):
            label, _ = impl.panoptic_fuse(CLS, MASKS, (8, 8), (16, 16), THING, score, overlap)
            assert label.shape == (16, 16)


SETTINGS = {
    "match_threshold": 0.5,
    "class_change_penalty": 0.3,
    "birth_score": 0.5,
    "max_missed": 3,
    "momentum": 0.8,
}

#: id -> (the setting, a bad value); each is named in the error, for both implementations
BAD_SETTINGS = {
    "match_nan": ("match_threshold", float("nan")),
    "match_inf": ("match_threshold", float("inf")),
    "match_above_1": ("match_threshold", 1.5),
    "match_below_minus_1": ("match_threshold", -1.5),
    "match_str": ("match_threshold", "0.5"),
    "penalty_negative": ("class_change_penalty", -3.0),
    "penalty_inf": ("class_change_penalty", float("inf")),
    "birth_nan": ("birth_score", float("nan")),
    "birth_above_1": ("birth_score", 2.0),
    "birth_str": ("birth_score", "x"),
    "max_missed_negative": ("max_missed", -1),
    "max_missed_float": ("max_missed", 2.5),
    "max_missed_bool": ("max_missed", True),
    "max_missed_huge": ("max_missed", 2**31),
    "momentum_above_1": ("momentum", 5.0),
    "momentum_inf": ("momentum", float("inf")),
    "momentum_negative": ("momentum", -0.1),
    "momentum_bool": ("momentum", False),
}


def _tracker(impl: str, **settings):
    before = ops.implementation()
    ops.use(impl)
    try:
        return ops.make_tracker(**{**SETTINGS, **settings})
    finally:
        ops.use(before)


@pytest.mark.parametrize("case", BAD_SETTINGS)
def test_make_tracker_rejects_a_bad_setting_alike(case):
    name, value = BAD_SETTINGS[case]
    messages = []
    for impl in IMPLS:
        with pytest.raises(InputError, match=f"^{name} ") as info:
            _tracker(impl, **{name: value})
        messages.append(str(info.value))
    assert messages[0] == messages[1]


E = np.eye(3, 4, dtype=F32)
C = np.array([1, 2, 3], np.int32)
S = np.full(3, 0.9, F32)

#: id -> (embeddings, classes, scores, the argument named first)
BAD_UPDATES = {
    "emb_1d": (E[0], C[:1], S[:1], "embeddings"),
    "emb_3d": (E[None], C, S, "embeddings"),
    "emb_no_columns": (np.zeros((3, 0), F32), C, S, "embeddings"),
    "emb_nan": (nan_like(E), C, S, "embeddings"),
    "emb_inf": (inf_like(E), C, S, "embeddings"),
    "emb_beyond_float32": (np.full((3, 4), 1e300), C, S, "embeddings"),
    "emb_none": (None, C, S, "embeddings"),
    "emb_str": ("abc", C, S, "embeddings"),
    "emb_ragged": ([[1.0, 2.0], [1.0]], C[:2], S[:2], "embeddings"),
    "emb_complex": (E.astype(complex), C, S, "embeddings"),
    "emb_bool": (E.astype(bool), C, S, "embeddings"),
    "classes_long": (E[:2], C, S[:2], "classes"),
    "classes_short": (E, C[:2], S, "classes"),
    "classes_2d": (E, C[None], S, "classes"),
    "classes_float": (E, C.astype(F32), S, "classes"),
    "classes_none": (E, None, S, "classes"),
    "classes_huge": (E, np.array([1, 2, 2**40]), S, "classes"),
    "scores_short": (E, C, S[:2], "scores"),
    "scores_nan": (E, C, nan_like(S), "scores"),
    "scores_str": (E, C, ["a", "b", "c"], "scores"),
    "scores_none": (E, C, None, "scores"),
}


@pytest.mark.parametrize("case", BAD_UPDATES)
def test_tracker_update_rejects_bad_arguments_alike(case):
    """The update arguments are checked once, for both implementations: InputError (a
    ValueError) naming the argument, word for word the same, and the tracker untouched."""
    *args, word = BAD_UPDATES[case]
    messages = []
    for impl in IMPLS:
        tracker = _tracker(impl)
        with pytest.raises(InputError, match=f"^{word} ") as info:
            tracker.update(*args)
        assert isinstance(info.value, ValueError)
        assert tracker.frame_index == -1 and tracker.live_tracks == 0
        messages.append(str(info.value))
    assert messages[0] == messages[1]


def test_tracker_dim_change_is_the_same_error_in_both():
    messages = []
    for impl in IMPLS:
        tracker = _tracker(impl)
        tracker.update(E, C, S)
        with pytest.raises(InputError, match=r"^embeddings: dim differs") as info:
            tracker.update(np.eye(3, 5, dtype=F32), C, S)
        messages.append(str(info.value))
    assert messages[0] == messages[1]


def test_tracker_update_takes_lists_and_other_dtypes_alike():
    """Lists, float64 embeddings / scores and int64 classes are converted the same way in
    both implementations; an empty frame (0 x D) is fine."""
    got = {}
    for impl in IMPLS:
        tracker = _tracker(impl)
        ids = [tracker.update(E.tolist(), C.tolist(), S.tolist()).tolist()]
        ids.append(tracker.update(E.astype(np.float64), C.astype(np.int64), [0.9] * 3).tolist())
        ids.append(tracker.update(np.zeros((0, 4)), [], []).tolist())
        got[impl] = (ids, tracker.frame_index, tracker.tracks_started)
    assert got["cpp"] == got["numpy"] == ([[1, 2, 3], [1, 2, 3], []], 2, 3)
