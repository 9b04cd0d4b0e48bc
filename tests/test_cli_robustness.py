"""The command line against what users type: every bad input is refused before any work with exit
status 2 and a message naming the input (content, style, group reference), a result holding NaN is
never written, a failed write leaves the old output as it was, and a rig with its left/right labels
swapped is refused instead of retargeted upside down."""

from __future__ import annotations

import os
import re
import resource
import subprocess
import sys

import numpy as np
import pytest

import core.__main__ as cli
from core.io.bvh import format_bvh, parse_bvh, read_bvh, write_bvh
from core.retarget.matching import rig_for_skeleton, sides_swapped
from core.retarget.rig import RigError
from core.runtime import RigMotion, stylize_rig_motion
from tests.conftest import DATA_ROOT, REPO_ROOT, bandai_clip

CONTENT = "dataset-1_walk_normal_001.bvh"
STYLE = "dataset-1_walk_old_001.bvh"


@pytest.fixture
def inputs(tmp_path, data_root):
    """Copies of a content and a style clip in a scratch folder, and an output path there."""
    content, style = tmp_path / "content.bvh", tmp_path / "style.bvh"
    content.write_bytes(bandai_clip(CONTENT).read_bytes())
    style.write_bytes(bandai_clip(STYLE).read_bytes())
    return content, style, tmp_path / "out.bvh"


def _run(capsys, *args) -> tuple[int, str]:
    code = cli.main(["stylize", *map(str, args)])
    return code, capsys.readouterr().err


@pytest.fixture
def no_work(monkeypatch):
    """Fail the test if any input is read or any stylizer runs."""
    import core.io.bvh
    import core.runtime

    def forbidden(*args, **kwargs):
        raise AssertionError("work started before the arguments were checked")

    monkeypatch.setattr(core.io.bvh, "read_bvh", forbidden)
    monkeypatch.setattr(core.runtime, "stylize_rig_motion", forbidden)


# ---------------------------------------------------------------- output path


def test_output_that_is_an_input_is_refused_before_any_work(inputs, tmp_path, capsys, no_work):
    content, style, _ = inputs
    before = content.read_bytes(), style.read_bytes()
    os.symlink(content, tmp_path / "link.bvh")
    os.link(style, tmp_path / "hard.bvh")
    cases = {
        content: "content",
        tmp_path / "." / "style.bvh": "style",
        tmp_path / "link.bvh": "content",
        tmp_path / "hard.bvh": "style",
    }
    for output, role in cases.items():
        code, err = _run(capsys, content, style, "-o", output)
        assert code == 2 and f"that is the {role} file" in err, err
    arm = tmp_path / "arm.bvh"
    code, err = _run(capsys, content, style, "-o", arm, "--group-reference", f"left_arm={arm}")
    assert code == 2 and "that is the group reference left_arm file" in err
    config = tmp_path / "stylizer.json"
    config.write_text("{}")
    code, err = _run(capsys, content, style, "-o", config, "--config", config)
    assert code == 2 and "that is the model config file" in err and config.read_text() == "{}"
    assert (content.read_bytes(), style.read_bytes()) == before


def test_output_folder_is_checked_before_any_work(inputs, tmp_path, capsys, no_work):
    content, style, _ = inputs
    code, err = _run(capsys, content, style, "-o", tmp_path / "missing" / "out.bvh")
    assert code == 2 and "does not exist" in err and str(tmp_path / "missing") in err
    for output in (tmp_path, "/dev/null"):
        code, err = _run(capsys, content, style, "-o", output)
        assert code == 2 and "is a folder or a device" in err
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        code, err = _run(capsys, content, style, "-o", locked / "out.bvh")
        assert code == 2 and "is not writable" in err


# ---------------------------------------------------------------- flags


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "1e300", "-1", "4.5", "lots"])
def test_bad_weights_are_refused(inputs, capsys, no_work, value):
    content, style, out = inputs
    code, err = _run(capsys, content, style, "-o", out, "--weights", f"root=0,left_arm={value}")
    assert code == 2 and f"--weights left_arm={value!r}" in err, err
    assert not out.exists()


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--weights", "root=0,root=1"], "--weights: 'root' is given twice"),
        (["--weights", "root=0", "--weights", "root=1"], "--weights: 'root' is given twice"),
        (["--option", "root=0,root=1"], "--option: 'root' is given twice"),
        (["--option", "steps=2", "--option", "steps=3"], "--option: 'steps' is given twice"),
        (["--group-reference", "left_arm=a.bvh,left_arm=b.bvh"], "--group-reference: 'left_arm' is given twice"),
        (["--option", "guidance=inf"], "--option guidance='inf': expected a finite number"),
        (["--option", "guidance=nan"], "--option guidance='nan': expected a finite number"),
    ],
)
def test_duplicate_and_non_finite_flags_are_refused(inputs, capsys, no_work, flags, message):
    content, style, out = inputs
    code, err = _run(capsys, content, style, "-o", out, *flags)
    assert code == 2 and message in err, err


def test_weights_within_bounds_and_named_options_are_taken(inputs, capsys, monkeypatch):
    import core.runtime

    calls = {}

    def fake(content, reference, groups, weights, options, stylizer):
        calls.update(weights=weights, options=options)
        return content.motion

    monkeypatch.setattr(core.runtime, "stylize_rig_motion", fake)
    content, style, out = inputs
    flags = ["--weights", "root=0,left_arm=4", "--weights", "torso=0.5", "--option", "mode=fast,keep_path=true"]
    code, err = _run(capsys, content, style, "-o", out, "--stylizer", "identity", *flags)
    assert code == 0, err
    assert calls["weights"] == {"root": 0.0, "left_arm": 4.0, "torso": 0.5}
    assert calls["options"] == {"mode": "fast", "keep_path": True}


# ---------------------------------------------------------------- inputs


def test_short_clips_name_the_input_and_what_to_do(inputs, tmp_path, capsys):
    content, style, out = inputs
    short = tmp_path / "short.bvh"
    write_bvh(read_bvh(content).slice(0, 3), short)
    for args, role in (
        ((short, style), "content"),
        ((content, short), "style"),
        ((content, style, "--group-reference", f"left_arm={short}"), "group reference left_arm"),
    ):
        code, err = _run(capsys, *args, "-o", out, "--stylizer", "identity")
        assert code == 2 and f"{role} {short}: 3 frame(s)" in err and "at least 4" in err and "longer take" in err, err
    assert not out.exists()


def test_absurd_takes_are_refused_naming_the_input(inputs, tmp_path, capsys):
    content, style, out = inputs
    typed = tmp_path / "typed_fps.bvh"
    typed.write_text(re.sub(r"Frame Time:.*", "Frame Time: 30", style.read_text()))
    code, err = _run(capsys, content, typed, "-o", out, "--stylizer", "identity")
    assert code == 2 and str(typed) in err and "(style)" in err and "seconds per frame" in err, err
    motion = read_bvh(content)
    long_take = tmp_path / "session.bvh"
    frames = np.arange(3700) % motion.num_frames
    write_bvh(motion.with_arrays(motion.rotations[frames], motion.positions[frames], fps=1.0), long_take)
    code, err = _run(capsys, long_take, style, "-o", out, "--stylizer", "identity")
    assert code == 2 and f"content {long_take}: 3700 frames at 1 fps is 61.6 min; stylize at most 60 min" in err, err
    assert not out.exists()


def test_nan_result_is_never_written(inputs, capsys, monkeypatch):
    import core.runtime

    def nan_result(content, *args, **kwargs):
        rotations = content.motion.rotations.copy()
        rotations[5, 3] = np.nan
        return content.motion.with_arrays(rotations)

    monkeypatch.setattr(core.runtime, "stylize_rig_motion", nan_result)
    content, style, out = inputs
    out.write_bytes(b"previous result")
    code, err = _run(capsys, content, style, "-o", out, "--stylizer", "identity")
    assert code == 1 and "NaN or infinite" in err and "nothing was written" in err
    assert out.read_bytes() == b"previous result"


def test_failed_write_leaves_the_old_output(inputs, tmp_path):
    """The whole command under a 4 KiB file size limit: exit 2, a message naming the output, the
    old output byte-identical and no temporary file beside it."""
    content, style, out = inputs
    out.write_bytes(b"previous result")
    before = sorted(os.listdir(tmp_path))

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))

    r = subprocess.run(
        [sys.executable, "-m", "core", "stylize", str(content), str(style), "-o", str(out), "--stylizer", "identity"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=limit,
        check=False,
    )
    assert r.returncode == 2 and f"cannot write {out}" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert out.read_bytes() == b"previous result"
    assert sorted(os.listdir(tmp_path)) == before


def test_a_good_run_still_writes(inputs, capsys):
    content, style, out = inputs
    code, err = _run(capsys, content, style, "-o", out, "--stylizer", "statistics")
    assert code == 0, err
    assert read_bvh(out).num_frames == read_bvh(content).num_frames


# ---------------------------------------------------------------- sides swapped


def _swap_sides(text: str) -> str:
    """Bone names with Left<->Right swapped: Bandai's _L/_R, CC's _L_/_R_ and Left/Right words."""
    swap = {"_L": "_R", "_R": "_L", "Left": "Right", "Right": "Left"}
    return re.sub(r"_[LR](?=\b|_)|Left|Right", lambda m: swap[m.group(0)], text)


SIDED_CLIPS = [
    bandai_clip(CONTENT),
    bandai_clip("dataset-2_wave-right-hand_active_020.bvh.gz"),
    bandai_clip("dataset-1_dash_childish_001.bvh"),  # tiptoe sprint: the swinging foot points back
    DATA_ROOT / "motion" / "cmu_iclone_ccbase" / "002_01.bvh.gz",
]


@pytest.mark.parametrize("path", SIDED_CLIPS, ids=lambda p: p.name)
def test_sides_swapped_rigs_are_detected_by_geometry(data_root, path):
    motion = read_bvh(path)
    swapped = parse_bvh(_swap_sides(format_bvh(motion)))
    assert swapped.skeleton.names != motion.skeleton.names
    assert sides_swapped(rig_for_skeleton(motion.skeleton), motion) is False
    assert sides_swapped(rig_for_skeleton(swapped.skeleton), swapped) is True


@pytest.mark.parametrize("name", ["walk1.bvh", "zombieWalk1.bvh"])
def test_a_z_up_bvh_is_read_upright_not_refused_as_swapped(inputs, data_root, capsys, name):
    """MakeHuman exports Z-up BVH: the rig's up axis comes from its rest pose, so its sides are
    told apart in the right frame (read as Y-up, the body lies down and looks mirrored)."""
    _, style, out = inputs
    content = data_root / "motion" / "makehuman_cc0" / name
    assert rig_for_skeleton(read_bvh(content).skeleton).up_axis == "Z"
    code, err = _run(capsys, content, style, "-o", out, "--stylizer", "statistics")
    assert code == 0, err
    assert read_bvh(out).num_frames == read_bvh(content).num_frames


def test_sides_swapped_input_is_refused(inputs, tmp_path, capsys):
    content, style, out = inputs
    swapped = tmp_path / "swapped.bvh"
    swapped.write_text(_swap_sides(content.read_text()))
    for args, role in (((swapped, style), "content"), ((content, swapped), "style")):
        code, err = _run(capsys, *args, "-o", out, "--stylizer", "statistics")
        assert code == 2 and f"{role} {swapped}" in err and "'UpperLeg_L'" in err, err
        assert "on the character's right" in err and "swap the left/right bone names" in err
    assert not out.exists()


def test_the_runtime_refuses_a_swapped_rig_in_every_role(inputs):
    """The server and the add-on go through stylize_rig_motion: the check is there, not in the CLI."""
    content = inputs[0]
    good, bad = read_bvh(content), parse_bvh(_swap_sides(content.read_text()))
    good, bad = RigMotion(rig_for_skeleton(good.skeleton), good), RigMotion(rig_for_skeleton(bad.skeleton), bad)
    for args, groups, role in (
        ((bad, good), {}, "content"),
        ((good, bad), {}, "reference"),
        ((good, good), {"left_leg": bad}, "group reference left_leg"),
    ):
        with pytest.raises(RigError, match=rf"^{role}: rig 'bandai': the bones named left"):
            stylize_rig_motion(*args, group_references=groups, stylizer="identity")
