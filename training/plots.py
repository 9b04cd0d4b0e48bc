"""Plots for people: stick-figure strips (PNG) and animated GIFs of one or more clips.

Both take Motions (joint positions by forward kinematics, joint names from the skeleton) or plain
world-position arrays (F, J, 3) with their parents, so any rig plots: the canonical 22-joint
skeleton, a CMU rig, a retargeted Mixamo rig. Positions are Y-up by default (``up="z"`` for
Blender's Z-up); distances are labelled in ``units`` (the Bandai data is in centimetres).

What the pictures show:
- each figure is drawn in orthographic projection, ``view="side"`` (the camera looks across the
  direction of travel, so a walk goes left to right) or ``view="oblique"`` (turned 40 degrees towards
  the character's front and looking down 15 degrees, so depth and arm swing read too), or both;
  ``view="auto"`` (the default) picks side for a clip that travels and oblique for one that stays
  in place (a wave seen from the side hides the waving arm);
- left limbs in blue, right limbs in orange, centre bones in dark grey (sides come from the joint
  names: ``_L``/``_R``, ``.L``/``.R``, ``Left``/``Right``, CMU's ``LHipJoint``...); without names
  every bone is grey; bones nearer the camera are drawn over farther ones;
- the ground (a line with a tick every ``grid`` units in the side view, a grid in the oblique view),
  the pelvis path over the whole clip drawn faintly, a head circle where a joint is named "head";
- every panel of a figure uses the same scale, so clips compare at a glance.

The GIF camera follows the pelvis (smoothed over a second), the ground ticks scroll past, and the
clip is subsampled to ``fps`` frames per second and quantised to one small shared palette, which
keeps a 10 s clip well under 2 MB. Matplotlib is imported lazily and drawn on its
Agg canvas directly (no pyplot, so it never changes a caller's backend).

Command line: ``python -m training.plots a.bvh b.bvh --strip strip.png --gif clip.gif``.
"""

from __future__ import annotations

import argparse
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.io.atomic import replacing

LEFT_COLOR = "#1f63b4"  # blue
RIGHT_COLOR = "#e8710a"  # orange (blue/orange stays distinct for colour-blind readers)
CENTRE_COLOR = "#3a3a3a"
PATH_COLOR = "#8a8a8a"
GROUND_COLOR = "#9a9a9a"
VIEWS = ("side", "oblique")
OBLIQUE_YAW_DEG = 40.0
OBLIQUE_ELEVATION_DEG = 15.0

_CMU_ASF_PARTS = "clavicle|humerus|radius|wrist|hand|fingers|thumb|femur|tibia|foot|toes|hipjoint"


def joint_side(name: str | None) -> str | None:
    """'L', 'R' or None (centre / unknown) from a joint name in any common convention."""
    if not name:
        return None
    base = name.split(":")[-1]  # mixamorig:LeftArm
    for side, word in (("L", "left"), ("R", "right")):
        # left_arm, LeftArm, HandLeft, LEFT_ARM; not 'upright'
        if re.search(rf"(^|[^a-z]){word}|{word.capitalize()}|{word.upper()}", base):
            return side
    low = base.lower()
    m = re.search(r"(^|[\s_.\-])([lr])([\s_.\-]|\d|$)", low)  # Hand_L, thigh.L.001, Bip01 L Thigh, L_Foot
    if m:
        return m.group(2).upper()
    m = re.match(r"([LR])(?=[A-Z])", base)  # CMU BVH: LHipJoint, RThumb
    if m:
        return m.group(1)
    m = re.match(rf"([lr])({_CMU_ASF_PARTS})$", low)  # CMU ASF: lhumerus, rfemur
    if m:
        return m.group(1).upper()
    return None


@dataclass
class _Clip:
    """One clip ready to draw: Y-up world positions and the figure's structure."""

    positions: np.ndarray  # (F, J, 3)
    parents: tuple[int, ...]
    names: tuple[str, ...] | None
    fps: float
    title: str
    ground: float
    pelvis: int
    bones: list[tuple[int, int, str | None]]  # (parent, child, side)
    drawn: np.ndarray  # the joints the bones use (not a static joint above the pelvis)
    head: int | None
    neck: int | None
    head_radius: float
    forward: np.ndarray  # unit horizontal direction the side view runs along (screen right)
    travels: bool  # the pelvis moves more than half the body height from start to end

    @property
    def num_frames(self) -> int:
        return self.positions.shape[0]

    @property
    def duration(self) -> float:
        return (self.num_frames - 1) / self.fps

    def basis(self, view: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Screen right, screen up and toward-camera unit vectors (world, Y-up) for the view."""
        up = np.array([0.0, 1.0, 0.0])
        f = self.forward
        toward = np.cross(f, up)  # side camera: the walk runs to screen right
        if view == "side":
            return f, up, toward
        yaw = np.radians(OBLIQUE_YAW_DEG)
        toward_h = np.cos(yaw) * toward + np.sin(yaw) * f  # turn towards the character's front
        right = np.cross(up, toward_h)
        elev = np.radians(OBLIQUE_ELEVATION_DEG)
        cam = np.cos(elev) * toward_h + np.sin(elev) * up
        screen_up = -np.sin(elev) * toward_h + np.cos(elev) * up
        return right, screen_up, cam


def _to_y_up(positions: np.ndarray, up: str) -> np.ndarray:
    if up == "y":
        return positions
    if up == "z":  # Blender: X right, Y forward, Z up  ->  X, Z, -Y
        return np.stack([positions[..., 0], positions[..., 2], -positions[..., 1]], -1)
    raise ValueError(f"up must be 'y' or 'z', got {up!r}")


def _from_motion(motion):
    """World positions of a Motion plus its non-zero End Sites as extra joints."""
    skeleton = motion.skeleton
    world_rot, world_pos = motion.world()
    positions, parents, names = [world_pos], list(skeleton.parents), list(skeleton.names)
    from core.ops.rotations import quat_rotate

    for j, offset in sorted(skeleton.end_sites.items()):
        offset = np.asarray(offset, dtype=np.float64)
        if np.linalg.norm(offset) < 1e-9:
            continue
        tip = world_pos[:, j] + quat_rotate(world_rot[:, j], np.broadcast_to(offset, world_pos[:, j].shape))
        positions.append(tip[:, None])
        parents.append(j)
        names.append(f"{skeleton.names[j]}_end")
    return np.concatenate(positions, 1), tuple(parents), tuple(names), float(motion.fps)


def _as_list(x):
    if isinstance(x, (list, tuple)):
        return list(x)
    return [x]


def _prepare(motions_or_positions, parents, names, fps, titles, up, ground) -> list[_Clip]:
    items = _as_list(motions_or_positions)
    if not items:
        raise ValueError("nothing to plot: pass a Motion, an (F, J, 3) array or a list of them")
    titles = _as_list(titles) if titles is not None else [None] * len(items)
    if len(titles) != len(items):
        raise ValueError(f"{len(titles)} titles for {len(items)} clips")
    clips = []
    for i, (item, title) in enumerate(zip(items, titles)):
        if hasattr(item, "skeleton") and hasattr(item, "world"):
            pos, par, nms, rate = _from_motion(item)
        else:
            pos = np.asarray(item, dtype=np.float64)
            if pos.ndim == 2:
                pos = pos[None]
            if pos.ndim != 3 or pos.shape[-1] != 3:
                raise ValueError(f"clip {i}: positions must be (F, J, 3), got shape {pos.shape}")
            if parents is None:
                raise ValueError(f"clip {i}: position arrays need `parents`")
            par = tuple(int(p) for p in parents)
            if len(par) != pos.shape[1]:
                raise ValueError(f"clip {i}: {pos.shape[1]} joints but {len(par)} parents")
            nms = tuple(names) if names is not None else None
            if nms is not None and len(nms) != len(par):
                raise ValueError(f"clip {i}: {len(nms)} names for {len(par)} joints")
            rate = float(fps) if fps else 30.0
        if pos.shape[0] == 0:
            raise ValueError(f"clip {i} has no frames")
        if not np.all(np.isfinite(pos)):
            raise ValueError(f"clip {i} has NaN or infinite positions")
        pos = _to_y_up(pos, up)
        clips.append(_build_clip(pos, par, nms, rate, title or f"clip {i + 1}", ground))
    return clips


def _build_clip(pos, parents, names, fps, title, ground) -> _Clip:
    num_joints = len(parents)
    children = [[] for _ in range(num_joints)]
    for j, p in enumerate(parents):
        if p >= 0:
            children[p].append(j)
    # The pelvis: the first joint from the root that branches (Bandai's static joint_Root -> Hips).
    root = next((j for j, p in enumerate(parents) if p < 0), 0)
    pelvis = root
    while len(children[pelvis]) == 1:
        pelvis = children[pelvis][0]
    if not children[pelvis]:
        pelvis = root
    above_pelvis = set()
    j = pelvis
    while j >= 0:
        above_pelvis.add(j)
        j = parents[j]
    sides = [joint_side(n) for n in names] if names else [None] * num_joints
    bones = [(p, j, sides[j]) for j, p in enumerate(parents) if p >= 0 and j not in above_pelvis]
    drawn = np.array(sorted({k for b in bones for k in b[:2]} | {pelvis}))
    body = pos[:, drawn]

    head = neck = None
    if names:
        heads = [j for j, n in enumerate(names) if "head" in n.lower() and sides[j] is None and "end" not in n.lower()]
        if heads:
            head = max(heads, key=lambda k: np.median(pos[:, k, 1]))  # the highest (HeadTop beats Head)
            neck = parents[head] if parents[head] >= 0 else None
    head_radius = 0.0
    if head is not None:
        reach = np.median(np.linalg.norm(pos[:, head] - pos[:, pelvis], axis=-1))
        head_radius = 0.2 * float(reach)

    if ground is None:
        ground = float(body[..., 1].min())
    forward, travels = _forward(body, pos[:, pelvis], [sides[k] for k in drawn] if names else None)
    return _Clip(
        pos,
        tuple(parents),
        names,
        fps,
        title,
        float(ground),
        pelvis,
        bones,
        drawn,
        head,
        neck,
        head_radius,
        forward,
        travels,
    )


def _forward(body, pelvis_path, sides) -> tuple[np.ndarray, bool]:
    """The horizontal direction the side view runs along: the main direction of travel, or, for a
    clip that stays in place, the direction the character faces (from its left and right joints);
    and whether the clip travels."""
    path = pelvis_path[:, [0, 2]]
    travel = path[-1] - path[0]
    height = max(float(np.ptp(body[0, :, 1])), 1e-6)
    if np.linalg.norm(travel) > 0.5 * height:
        centred = path - path.mean(0)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        d = vt[0] if np.dot(vt[0], travel) >= 0 else -vt[0]
        return np.array([d[0], 0.0, d[1]]) / np.linalg.norm(d), True
    if sides:
        left = [j for j, s in enumerate(sides) if s == "L"]
        right = [j for j, s in enumerate(sides) if s == "R"]
        if left and right:
            across = body[:, left].mean((0, 1)) - body[:, right].mean((0, 1))
            across[1] = 0.0
            if np.linalg.norm(across) > 1e-6:
                f = np.cross(across, [0.0, 1.0, 0.0])  # left x up = forward
                return f / np.linalg.norm(f), False
    return np.array([1.0, 0.0, 0.0]), False


@dataclass
class _Frame:
    """Shared framing for every panel of one figure: half width and vertical range around the
    camera target (the pelvis's ground point), the ground grid step, and the figure height."""

    half_width: float
    y_low: float
    y_high: float
    grid: float


def _framing(rows: list[tuple[_Clip, str]], grid) -> _Frame:
    half, low, high, height = 0.0, 0.0, 0.0, 0.0
    for clip, view in rows:
        right, screen_up, _ = clip.basis(view)
        target = clip.positions[:, clip.pelvis].copy()
        target[:, 1] = clip.ground
        rel = clip.positions[:, clip.drawn] - target[:, None]
        sx, sy = rel @ right, rel @ screen_up
        half = max(half, float(np.abs(sx).max()))
        low, high = min(low, float(sy.min())), max(high, float(sy.max()) + 2 * clip.head_radius)
        height = max(height, float(np.ptp(clip.positions[:, clip.drawn, 1])))
    height = max(height, 1e-6)
    margin = 0.08 * height
    half = max(half + margin, 0.38 * height)
    if any(view == "oblique" for _, view in rows):  # room for the ground grid in front of the feet
        low = min(low, -np.sin(np.radians(OBLIQUE_ELEVATION_DEG)) * half)
    if grid is None:
        grid = _nice_step(0.3 * height)
    return _Frame(half, min(low, 0.0) - margin, high + margin, float(grid))


def _nice_step(x: float) -> float:
    exp = 10 ** np.floor(np.log10(x))
    for m in (1, 2, 2.5, 5, 10):
        if m * exp >= x:
            return float(m * exp)
    return float(10 * exp)


class _Figure:
    """The artists of one stick figure in one axes, updated frame by frame."""

    def __init__(self, ax, clip: _Clip, view: str, frame: _Frame, line_width: float, half_width=None):
        from matplotlib.lines import Line2D
        from matplotlib.patches import Circle

        self.ax, self.clip, self.view, self.frame = ax, clip, view, frame
        self.half_width = half_width or frame.half_width  # a wider panel shows more ground
        self.right, self.screen_up, self.toward = clip.basis(view)
        colors = {"L": LEFT_COLOR, "R": RIGHT_COLOR, None: CENTRE_COLOR}
        self.lines = []
        for _, _, side in clip.bones:
            line = Line2D([], [], color=colors[side], lw=line_width, solid_capstyle="round")
            ax.add_line(line)
            self.lines.append(line)
        self.joints = Line2D([], [], ls="none", marker="o", ms=line_width * 0.9, color=CENTRE_COLOR, zorder=20)
        ax.add_line(self.joints)
        self.head = None
        if clip.head is not None:
            self.head = Circle((0, 0), clip.head_radius, fc="white", ec=CENTRE_COLOR, lw=line_width * 0.8, zorder=19)
            ax.add_patch(self.head)
        self._draw_ground_and_path()

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return points @ self.right, points @ self.screen_up

    def _draw_ground_and_path(self):
        clip, ax, grid = self.clip, self.ax, self.frame.grid
        path = clip.positions[:, clip.pelvis]
        span = max(self.half_width, self.frame.half_width) * 1.6
        lo = path[:, [0, 2]].min(0) - span
        hi = path[:, [0, 2]].max(0) + span
        if self.view == "side":
            # The ground as a line across the whole clip, with world-fixed ticks that scroll past.
            along = path @ self.right
            a0, a1 = along.min() - span, along.max() + span
            g = clip.ground
            ax.plot([a0, a1], [g, g], color=GROUND_COLOR, lw=1.6, zorder=1, solid_capstyle="butt")
            ticks = np.arange(np.floor(a0 / grid) * grid, a1 + grid, grid)
            tick_len = 0.25 * grid
            for t in ticks:
                ax.plot([t, t - 0.5 * tick_len], [g, g - tick_len], color=GROUND_COLOR, lw=0.8, zorder=1)
            # The pelvis path at its real height: the bob of a walk, the bounce of a run.
            px, py = self.project(path)
            ax.plot(px, py, color=PATH_COLOR, lw=0.8, ls=(0, (2, 2)), alpha=0.6, zorder=2)
        else:
            # A ground grid aligned with the view, then the pelvis path's ground track.
            f = self.clip.forward
            lat = np.cross([0.0, 1.0, 0.0], f)
            corners = np.array([[lo[0], lo[1]], [lo[0], hi[1]], [hi[0], lo[1]], [hi[0], hi[1]]])
            cf = corners @ f[[0, 2]]
            cl = corners @ lat[[0, 2]]
            fa = np.arange(np.floor(cf.min() / grid) * grid, cf.max() + grid, grid)
            la = np.arange(np.floor(cl.min() / grid) * grid, cl.max() + grid, grid)
            g = np.array([0.0, clip.ground, 0.0])
            for a in fa:
                seg = g + a * f + np.outer([la[0], la[-1]], lat)
                ax.plot(*self.project(seg), color=GROUND_COLOR, lw=0.6, alpha=0.7, zorder=1)
            for b in la:
                seg = g + b * lat + np.outer([fa[0], fa[-1]], f)
                ax.plot(*self.project(seg), color=GROUND_COLOR, lw=0.6, alpha=0.7, zorder=1)
            track = path.copy()
            track[:, 1] = clip.ground
            ax.plot(*self.project(track), color=PATH_COLOR, lw=1.0, ls=(0, (2, 2)), alpha=0.8, zorder=2)

    def target(self, frame: int) -> np.ndarray:
        """The camera target for a frame: the pelvis's ground point in screen coordinates."""
        p = self.clip.positions[frame, self.clip.pelvis].copy()
        p[1] = self.clip.ground
        return np.array(self.project(p))

    def update(self, frame: int):
        pos = self.clip.positions[frame]
        sx, sy = self.project(pos)
        depth = pos @ self.toward
        order = np.argsort(np.argsort([depth[p] + depth[c] for p, c, _ in self.clip.bones]))
        for line, (p, c, _), rank in zip(self.lines, self.clip.bones, order):
            line.set_data([sx[p], sx[c]], [sy[p], sy[c]])
            line.set_zorder(5 + rank * 0.01)
        self.joints.set_data(sx[self.clip.drawn], sy[self.clip.drawn])
        if self.head is not None:
            h, n = pos[self.clip.head], pos[self.clip.neck] if self.clip.neck is not None else pos[self.clip.head]
            d = h - n
            norm = np.linalg.norm(d)
            d = d / norm if norm > 1e-9 else np.array([0.0, 1.0, 0.0])
            centre = h + d * self.clip.head_radius * 0.9
            self.head.center = self.project(centre)

    def frame_on(self, cx: float, cy: float):
        fr = self.frame
        self.ax.set_xlim(cx - self.half_width, cx + self.half_width)
        self.ax.set_ylim(cy + fr.y_low, cy + fr.y_high)


def _new_figure(width_in: float, height_in: float, dpi: int):
    """A matplotlib Figure on its own Agg canvas: no pyplot, no global backend switch."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), dpi=dpi, facecolor="white")
    FigureCanvasAgg(fig)
    return fig


def _clip_views(clip: _Clip, view: str) -> tuple[str, ...]:
    if view == "auto":
        return ("side",) if clip.travels else ("oblique",)
    if view == "both":
        return VIEWS
    if view not in VIEWS:
        raise ValueError(f"view must be 'auto', 'side', 'oblique' or 'both', got {view!r}")
    return (view,)


def _legend(fig, clips, y: float, fontsize: float):
    from matplotlib.lines import Line2D

    sided = any(side for clip in clips for *_, side in clip.bones)
    handles = []
    if sided:
        handles += [
            Line2D([], [], color=LEFT_COLOR, lw=3, label="left side"),
            Line2D([], [], color=RIGHT_COLOR, lw=3, label="right side"),
        ]
    handles += [
        Line2D([], [], color=CENTRE_COLOR, lw=3, label="spine / head" if sided else "bones"),
        Line2D([], [], color=PATH_COLOR, lw=1, ls=(0, (2, 2)), label="pelvis path"),
    ]
    fig.legend(
        handles=handles,
        loc="upper center",
        bbox_to_anchor=(0.5, y),
        ncol=len(handles),
        frameon=False,
        fontsize=fontsize,
        handlelength=1.6,
        columnspacing=1.2,
    )


def stick_figure_strip(
    motions_or_positions,
    parents=None,
    path="strip.png",
    frames: int = 8,
    titles=None,
    *,
    names=None,
    fps: float | None = None,
    view: str = "auto",
    up: str = "y",
    units: str = "cm",
    ground: float | None = 0.0,
    grid: float | None = None,
    dpi: int = 100,
) -> Path:
    """Write a PNG with one row of stick figures per clip (two per clip for ``view="both"``) at
    ``frames`` evenly spaced times, all at one scale. Returns the path.

    motions_or_positions: a Motion, an (F, J, 3) world-position array, or a list of them;
    parents: the parent index of each joint (needed for arrays; taken from a Motion's skeleton);
    names: joint names for arrays (for left/right colours and the head); fps: frame rate of arrays;
    ground: the floor height (None: the lowest joint of each clip); grid: ground tick spacing.
    """
    from matplotlib.ticker import MultipleLocator

    if frames < 1:
        raise ValueError(f"frames must be at least 1, got {frames}")
    clips = _prepare(motions_or_positions, parents, names, fps, titles, up, ground)
    rows = [(clip, v) for clip in clips for v in _clip_views(clip, view)]
    fr = _framing(rows, grid)
    panel_h = 2.3  # inches of plot per row
    panel_w = panel_h * 2 * fr.half_width / (fr.y_high - fr.y_low)
    title_h, label_h, gap_h, legend_h = 0.32, 0.24, 0.22, 0.5
    row_h = title_h + label_h + panel_h + gap_h
    left_in, right_in = 0.6, 0.15
    fig_w = max(panel_w * frames + left_in + right_in, 6.0)
    fig_h = legend_h + len(rows) * row_h
    fig = _new_figure(fig_w, fig_h, dpi)
    try:
        lw = max(1.2, min(2.6, 14.0 / frames**0.5))
        slot = (fig_w - left_in - right_in) / frames
        for r, (clip, v) in enumerate(rows):
            top = fig_h - legend_h - r * row_h  # inches from the bottom
            axes_bottom = top - title_h - label_h - panel_h
            idx = np.unique(np.linspace(0, clip.num_frames - 1, frames).round().astype(int))
            view_label = "side view" if v == "side" else "oblique view"
            fig.text(
                left_in / fig_w, (top - 0.04) / fig_h, clip.title, fontsize=11, fontweight="bold", va="top", ha="left"
            )
            fig.text(
                1 - right_in / fig_w,
                (top - 0.06) / fig_h,
                f"{view_label} · {clip.duration:.1f} s, {clip.num_frames} frame{'s' * (clip.num_frames != 1)} "
                f"at {clip.fps:g} fps",
                fontsize=9,
                va="top",
                ha="right",
                color="#555555",
            )
            for k, f in enumerate(idx):
                ax = fig.add_axes(
                    (
                        (left_in + k * slot + 0.015 * slot) / fig_w,
                        axes_bottom / fig_h,
                        0.97 * slot / fig_w,
                        panel_h / fig_h,
                    )
                )
                fig_artist = _Figure(ax, clip, v, fr, lw)
                fig_artist.update(int(f))
                fig_artist.frame_on(*fig_artist.target(int(f)))
                ax.set_aspect("equal", adjustable="box")
                ax.set_title(f"{f / clip.fps:.1f} s", fontsize=9, pad=3)
                for side in ("top", "right", "bottom"):
                    ax.spines[side].set_visible(False)
                ax.tick_params(labelsize=7, length=2)
                ax.set_xticks([])
                if k == 0 and v == "side":
                    ax.set_ylabel(f"height ({units})", fontsize=8, labelpad=1)
                    ax.yaxis.set_major_locator(MultipleLocator(_nice_step(fr.y_high / 3)))
                else:
                    ax.set_yticks([])
                    ax.spines["left"].set_visible(False)
        _legend(fig, clips, 1 - 0.02 / fig_h, 9)
        fig.text(
            0.5,
            1 - 0.32 / fig_h,
            f"ground marks every {fr.grid:g} {units}; all panels at one scale",
            fontsize=8,
            color="#666666",
            ha="center",
            va="top",
        )
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with replacing(path) as temp:
            fig.savefig(temp, dpi=dpi, facecolor="white")
    finally:
        fig.clear()
    return path


def gif_frame_indices(num_frames: int, source_fps: float, fps: float) -> np.ndarray:
    """Source frame of each GIF frame when a clip of ``num_frames`` at ``source_fps`` plays at ``fps``
    in real time: floor(duration * fps) + 1 frames, from the first frame to the last whole step."""
    duration = (num_frames - 1) / source_fps
    count = int(np.floor(duration * fps + 1e-9)) + 1
    return np.minimum(np.round(np.arange(count) * source_fps / fps).astype(int), num_frames - 1)


def _frame_durations_ms(count: int, fps: float) -> list[int]:
    """Per-frame durations in whole 10 ms steps (GIF's unit) that add up to real time."""
    ends = np.round(np.arange(1, count + 1) * 100.0 / fps) * 10
    return [int(max(d, 10)) for d in np.diff(np.concatenate([[0.0], ends]))]


def _smooth(x: np.ndarray, window: int) -> np.ndarray:
    if window <= 1 or len(x) < 2:
        return x
    pad = window // 2
    padded = np.concatenate([np.repeat(x[:1], pad, 0), x, np.repeat(x[-1:], pad, 0)])
    kernel = np.ones(window) / window
    return np.stack([np.convolve(padded[:, i], kernel, mode="valid")[: len(x)] for i in range(x.shape[1])], 1)


def animate_gif(
    motions_or_positions,
    parents=None,
    path="clip.gif",
    fps: float = 15,
    titles=None,
    *,
    names=None,
    source_fps: float | None = None,
    view: str = "auto",
    up: str = "y",
    units: str = "cm",
    ground: float | None = 0.0,
    grid: float | None = None,
    panel_height_px: int = 260,
    colors: int = 48,
) -> Path:
    """Write an animated GIF of one or more clips side by side, played in real time at ``fps``
    frames per second, the camera following each pelvis. Shorter clips hold their last pose.
    ``source_fps`` is the frame rate of position arrays (Motions carry theirs). Returns the path."""
    from PIL import Image

    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    if view == "both":
        raise ValueError("animate_gif draws one view; pick 'side' or 'oblique'")
    clips = _prepare(motions_or_positions, parents, names, source_fps, titles, up, ground)
    rows = [(clip, _clip_views(clip, view)[0]) for clip in clips]
    fr = _framing(rows, grid)
    per_clip = [gif_frame_indices(c.num_frames, c.fps, fps) for c in clips]
    count = max(len(i) for i in per_clip)
    per_clip = [np.concatenate([i, np.full(count - len(i), i[-1])]) for i in per_clip]

    dpi = 72
    n = len(clips)
    plot_h = panel_height_px / dpi
    fitted_w = plot_h * 2 * fr.half_width / (fr.y_high - fr.y_low)
    panel_w = max(fitted_w, 2.2, 4.8 / n)
    title_h, legend_h, clock_h = 0.3, 0.28, 0.26
    fig_w, fig_h = panel_w * n, title_h + plot_h + legend_h + clock_h
    fig = _new_figure(fig_w, fig_h, dpi)
    try:
        lw = 2.4
        artists, targets = [], []
        for i, (clip, v) in enumerate(rows):
            ax = fig.add_axes((i / n, (legend_h + clock_h) / fig_h, 1 / n, plot_h / fig_h))
            ax.set_aspect("equal", adjustable="box")
            ax.set_axis_off()
            a = _Figure(ax, clip, v, fr, lw, half_width=fr.half_width * panel_w / fitted_w)
            artists.append(a)
            t = np.array([a.target(int(f)) for f in range(clip.num_frames)])
            targets.append(_smooth(t, max(1, round(clip.fps))))
            size = float(np.clip(panel_w * dpi / (0.6 * max(len(clip.title), 1)), 7, 10))
            fig.text(
                (i + 0.5) / n, 1 - 0.05 / fig_h, clip.title, fontsize=size, fontweight="bold", ha="center", va="top"
            )
        _legend(fig, clips, (legend_h + clock_h) / fig_h, 8)
        clock = fig.text(0.02, 0.05 / fig_h, "", fontsize=9, ha="left", va="bottom", color="#333333")
        views = sorted({v for _, v in rows})
        note = f"{' / '.join(views)} view · ground marks every {fr.grid:g} {units}"
        fig.text(0.98, 0.05 / fig_h, note, fontsize=8, ha="right", va="bottom", color="#666666")

        images = []
        for k in range(count):
            for a, idx, tgt in zip(artists, per_clip, targets):
                f = int(idx[k])
                a.update(f)
                a.frame_on(*tgt[f])
            clock.set_text(f"t = {k / fps:5.2f} s")  # changes every frame, so no two GIF frames merge
            fig.canvas.draw()
            rgb = np.asarray(fig.canvas.buffer_rgba())[..., :3]
            images.append(Image.fromarray(np.ascontiguousarray(rgb)))
    finally:
        fig.clear()

    # One palette for all frames (built from a few of them) keeps colours steady and the file small;
    # its most common entry (the background) is set to pure white.
    sample = images[:: max(1, len(images) // 6)][:6]
    w, h = sample[0].size
    sheet = Image.new("RGB", (w, h * len(sample)), "white")
    for k, im in enumerate(sample):
        sheet.paste(im, (0, k * h))
    palette = sheet.quantize(colors=colors, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    background = int(np.bincount(np.asarray(palette).ravel()).argmax())
    entries = palette.getpalette()
    entries[3 * background : 3 * background + 3] = [255, 255, 255]
    palette.putpalette(entries)
    frames_p = [im.quantize(palette=palette, dither=Image.Dither.NONE) for im in images]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path) as temp:
        frames_p[0].save(
            temp,
            save_all=True,
            append_images=frames_p[1:],
            duration=_frame_durations_ms(count, fps),
            loop=0,
            optimize=False,
            disposal=1,
        )
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.plots", description=__doc__.splitlines()[0])
    parser.add_argument("clips", nargs="+", help=".bvh or .bvh.gz files")
    parser.add_argument("--strip", help="write a stick-figure strip PNG here")
    parser.add_argument("--gif", help="write an animated GIF here")
    parser.add_argument("--frames", type=int, default=8, help="figures per strip row")
    parser.add_argument("--view", default="auto", choices=("auto", "side", "oblique", "both"))
    parser.add_argument("--fps", type=float, default=15, help="GIF frame rate")
    args = parser.parse_args(argv)
    if not args.strip and not args.gif:
        parser.error("give --strip and/or --gif")
    from core.io.bvh import read_bvh

    motions = [read_bvh(p) for p in args.clips]
    titles = [clip_title(p) for p in args.clips]
    if args.strip:
        out = stick_figure_strip(motions, None, args.strip, frames=args.frames, titles=titles, view=args.view)
        print(f"wrote {out} ({os.path.getsize(out) / 1024:.0f} KB)")
    if args.gif:
        gif_view = "auto" if args.view == "both" else args.view
        out = animate_gif(motions, None, args.gif, fps=args.fps, titles=titles, view=gif_view)
        print(f"wrote {out} ({os.path.getsize(out) / 1024:.0f} KB)")
    return 0


def clip_title(path) -> str:
    """A readable title from a clip's file name: 'dataset-2_walk_elderly_015.bvh.gz' -> 'walk · elderly · take 15'."""
    stem = Path(path).name
    for ext in (".gz", ".bvh"):
        stem = stem.removesuffix(ext)
    m = re.match(r"dataset-\d+_(.+?)_([^_]+)_(\d+)$", stem)
    if m:
        return f"{m.group(1)} · {m.group(2)} · take {int(m.group(3))}"
    return stem


if __name__ == "__main__":
    raise SystemExit(main())
