"""The click-to-mask methods themselves, on the working copy of an image (see ``interactive``).

Every function here takes plain arrays at one resolution and returns a bool mask at that
resolution; ``cocoseg.pipeline.annotation.interactive`` checks the input, scales clicks and
masks between the image and its working copy, and caches what is computed once per image.

Seeds are an ``int8`` map painted from the clicks and strokes, oldest first (a later mark
wins where two overlap): ``FOREGROUND_SEED`` where the object surely is, ``BACKGROUND_SEED``
where it surely is not, 0 elsewhere. The graph-cut methods keep their seeds: a positive click
is in the result and a negative one is not, whatever the colours say.

The constants below were chosen on the demo's train split with the robot clicker of
``benchmarks/interactive.py`` (whose figures come from the val split), except the box's
``BOX_CORE`` and ``BOX_AGREEMENT``, compared on val instances as their comment says,
``SEED_SHARE``, where train, val and two scales had to agree, and the smoothing's sizes, compared
on val and the kept ones confirmed on train.
"""

from __future__ import annotations

import cv2
import numpy as np

FOREGROUND_SEED, BACKGROUND_SEED = 1, 2
GRABCUT_ITERATIONS = 3
# GrabCut starts its colour models with k-means drawn from OpenCV's random generator (one per thread).
# It is seeded before every cut, so the same marks always give the same mask; unseeded, the result
# depended on every cut before it (grabcut_box's NoC@85 on 50 demo val instances moved between 8.6 and
# 9.3 with the generator's state). benchmarks/interactive.py varies it to measure that spread.
GRABCUT_SEED = 0
# Around a box GrabCut sees a margin of this share of the box's longer side (at least MIN_MARGIN working
# pixels): its colour models then describe the object's surroundings, not the whole picture, and a crop
# is much faster than the whole image.
MARGIN_SHARE, MIN_MARGIN = 0.5, 16
# A box larger than this (working pixels, longer side, margin included) is cut on a smaller copy: GrabCut's
# first round on a box over most of a 400x300 picture took 0.3-2.5 s depending on the picture (0.3 s at
# 240 px, 0.06-0.3 s at 160), and the clicks after it correct the edge at the working size. On the demo's
# train split the cap cost no measurable clicks (NoC@85 10.3-10.7 for caps of 160-400 px, within noise).
BOX_SIDE = 160
# The centre of a box (an ellipse of this share of the box's axes) is sure object: without it GrabCut
# lost the whole object on ~1 in 10 demo boxes. A cut whose IoU with the box's inscribed ellipse is
# under BOX_AGREEMENT is replaced by that ellipse (mean IoU after the box on 60 demo val instances:
# GrabCut alone 0.51, the ellipse alone 0.61, this rule 0.62). With SEED_SHARE 0.7 a larger sure centre
# pays too: grabcut_box NoC@85 (80 train / 50 val instances, three draws) 7.45 / 7.41 -> 7.29 / 7.15 at
# the pictures' own size, 8.36 / 9.05 -> 8.23 / 8.95 at 320 px, for BOX_CORE 0.25 -> 0.35 (0.45: 7.59 /
# 7.13 at own size; with seeds of 0.5, 0.35 had been level).
BOX_CORE, BOX_AGREEMENT = 0.35, 0.5
# A box drawn tight around an object crosses it on every row and column (the object's outline reaches
# each side, and a connected object has a pixel on every line between). Where GrabCut's cut leaves a row
# or column of the box empty, the pixel of that line whose colour is most like the object's becomes sure
# object and GrabCut runs again, up to this many times. Mean IoU after the box on all 467 demo val
# instances: 0.651 without, 0.666 with. NoC@85 of grabcut_box (means of several draws, see GRABCUT_SEED)
# with the pictures at their own size, as Annotate runs the tools: 9.10 -> 8.52 on 80 demo train
# instances, 8.93 -> 8.00 on 50 val; scaled to 320 px: 8.79 -> 8.54 on train, 9.02 -> 8.98 on val.
TIGHTNESS_ROUNDS = 3
# OpenCV's GrabCut keeps each side's colours as a mixture of this many Gaussians, 13 floats each (weight,
# mean, covariance).
GRABCUT_COMPONENTS = 5
# A lone first click grows, by watershed on the colour gradient, towards a ring this share of the working
# image's shorter side away: the object's edge is the strongest edge between the click and the ring.
# (A GrabCut from a disc of the same size reached ~0.3 mean IoU after one click instead of ~0.35.)
FIRST_RING_SHARE = 0.25
# A correction may change pixels up to WINDOW_SHARE times the click's distance to the other side of the
# mask (at least MIN_WINDOW working pixels) away, and the click grows to SEED_SHARE of that distance, sure
# of its side. A click sits in the middle of the error it marks, so the error holds most of that disc,
# and GrabCut alone is timid there: on the demo's val instances at their own size it fixed 59-77 % of
# the error within the window (clicks over 2.5 px away) and spoiled 7-27 % as many good pixels.
# grabcut_box NoC@85 (80 train / 50 val instances, three draws) by SEED_SHARE: 0.5 7.78 / 7.88, 0.6
# 7.56 / 7.60, 0.7 7.45 / 7.41, 0.8 7.41 / 7.52 at own size; 0.5 8.51 / 9.02, 0.7 8.36 / 9.05, 0.75
# 8.67 / 9.27 at 320 px, where a click's distance is a few pixels and a larger disc overshoots into the
# object. Wider windows fixed no more.
WINDOW_SHARE, MIN_WINDOW, SEED_SHARE = 2.0, 6, 0.7
# A correction's window wider than this (working pixels) is cut on a copy this wide and the cut scaled back:
# a far click opens a window eight times its distance across, and on a 640x480 picture the clicks tool's
# p95 was 386 ms uncapped, 111 ms with this cap (grabcut_box NoC@85 on 80 demo train / 50 val instances,
# own size, three draws: 7.82 / 7.88 uncapped, 7.79 / 7.89 capped).
CORRECTION_SIDE = 240
# A click at most NUDGE_REACH pixels from the other side of the mask is on a thin band along the edge,
# which colour models cannot place: the edge moves by that distance, up to NUDGE_WINDOW times it away,
# where a pixel's colour is nearer the click's side (local means over ALPHA_KERNEL squares; moving the
# whole band cost clicks: NoC@85 9.09 -> 8.97 on 80 demo train instances). A click one pixel from the
# other side is on a sliver the robot found nothing wider than: only the click's own pixels flip. The
# distance is the click's mark's farthest pixel (a disc of interactive.SEED_RADIUS). Slivers are a matter
# of scale: with the demo's val pictures scaled to 320 px this path took 24 % of the robot's clicks after
# grabcut_box's box, at their own size 1 % (the rest went to GrabCut).
NUDGE_REACH, NUDGE_WINDOW, ALPHA_KERNEL = 1.5, 10.0, 7
# GrabCut's edge follows every pixel of colour noise, and leaves holes and stray islands where the
# object's colours speckle; outlines drawn by people (COCO's polygons) are smooth and whole. So the
# box's cut is smoothed (a median over BOX_SMOOTHING squares), keeps only the parts that touch its sure
# centre, and its holes are filled; a correction is smoothed (over SMOOTHING squares) within
# SMOOTHING_REACH pixels of what it changed, and a positive one fills the holes no negative mark holds
# (a negative click is how a user keeps a real hole). grabcut_box NoC@85 (80 train / 50 val instances,
# own size, three draws): 7.29 / 7.15 -> 7.13 / 6.75; val at 320 px 8.95 -> 8.55. On val, SMOOTHING 5
# gave 6.83, 9 6.89, a SMOOTHING_REACH of 7 6.77; holes filled after positive clicks alone 7.04.
SMOOTHING, BOX_SMOOTHING, SMOOTHING_REACH = 7, 5, 4
# Superpixel snap: a superpixel joins when the brush covers at least this share of it (or the stroke's
# centre line crosses it).
SNAP_COVER = 0.5


def paint_mark(shape: tuple[int, int], points, radius: int) -> np.ndarray:
    """The pixels a brush of ``radius`` covers along ``points`` (one point: a disc), bool."""
    line = np.round(np.asarray(points, np.float64)).astype(np.int32).reshape(-1, 1, 2)
    canvas = np.zeros(shape, np.uint8)
    cv2.polylines(canvas, [line], False, 1, 2 * radius + 1)
    for x, y in line[:, 0]:
        cv2.circle(canvas, (int(x), int(y)), radius, 1, -1)
    return canvas.astype(bool)


def paint_seeds(shape: tuple[int, int], marks) -> np.ndarray:
    """Seed map of ``marks``: ``(points, positive, radius)`` in working pixels, oldest first."""
    seeds = np.zeros(shape, np.int8)
    for points, positive, radius in marks:
        seeds[paint_mark(shape, points, radius)] = FOREGROUND_SEED if positive else BACKGROUND_SEED
    return seeds


def bounding_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1), end exclusive, of a mask's pixels; None when empty."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def seeded_components(mask: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """The connected parts of ``mask`` that touch ``anchors``; all of ``mask`` when there are no anchors.

    GrabCut labels every pixel of the object's colours as foreground, wherever it is; a part no
    positive click touches is almost always such a stray look-alike.
    """
    if not anchors.any():
        return mask
    count, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    kept = np.unique(labels[anchors & mask])
    kept = kept[kept > 0]
    return np.isin(labels, kept) if count > 1 else mask


def filled_holes(mask: np.ndarray, kept: np.ndarray | None = None) -> np.ndarray:
    """``mask`` with its holes filled, except the holes that hold a pixel of ``kept``.

    A hole is a part of the rest (4-connected) that does not reach the picture's border.
    """
    _, labels = cv2.connectedComponents((~mask).astype(np.uint8), connectivity=4)
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    holes = ~mask & ~np.isin(labels, border)
    if kept is not None and (kept & holes).any():
        holes &= ~np.isin(labels, np.unique(labels[kept & holes]))
    return mask | holes


def smoothed(mask: np.ndarray, size: int, near: np.ndarray | None = None) -> np.ndarray:
    """``mask`` with each pixel the majority of the ``size`` square around it (a median), only ``near``."""
    median = cv2.medianBlur(mask.astype(np.uint8), size).astype(bool)
    return median if near is None else np.where(near, median, mask)


def _disc_around(shape: tuple[int, int], mark: np.ndarray, radius: float) -> np.ndarray:
    """The pixels within ``radius`` of the mark (the mark itself below a radius of one)."""
    if radius < 1:
        return mark.copy()
    distance = cv2.distanceTransform((~mark).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return distance <= radius


def _around(found: tuple[int, int, int, int], margin: int, shape: tuple[int, int]):
    """A slice of ``shape`` around a box, ``margin`` pixels wider on each side."""
    x0, y0, x1, y1 = found
    return np.s_[
        max(0, y0 - margin) : min(shape[0], y1 + margin), max(0, x0 - margin) : min(shape[1], x1 + margin)
    ]


def _grabcut(image: np.ndarray, trimap: np.ndarray, models: tuple | None = None) -> np.ndarray:
    """GrabCut in mask mode on ``trimap`` (changed in place) when both sides have samples; the object.

    ``models`` (``empty_models``: background, object) receive the colour models it fitted; they
    stay zero when it did not run.
    """
    object_like = np.isin(trimap, (cv2.GC_FGD, cv2.GC_PR_FGD))
    undecided = np.isin(trimap, (cv2.GC_PR_FGD, cv2.GC_PR_BGD))
    # GrabCut fits five colour clusters per side: with fewer samples it fails; with nothing undecided, moot.
    if undecided.any() and np.count_nonzero(object_like) >= 10 and np.count_nonzero(~object_like) >= 10:
        models = models or empty_models()
        image = np.ascontiguousarray(image)
        cv2.setRNGSeed(GRABCUT_SEED)
        cv2.grabCut(image, trimap, None, *models, GRABCUT_ITERATIONS, cv2.GC_INIT_WITH_MASK)
        object_like = np.isin(trimap, (cv2.GC_FGD, cv2.GC_PR_FGD))
    return object_like


def empty_models() -> tuple[np.ndarray, np.ndarray]:
    """Background and object colour models for ``cv2.grabCut`` to fill: (1, 13 per component) float64."""
    size = (1, 13 * GRABCUT_COMPONENTS)
    return np.zeros(size, np.float64), np.zeros(size, np.float64)


def colour_log_likelihood(model: np.ndarray, pixels: np.ndarray) -> np.ndarray:
    """Log-likelihood of RGB ``pixels`` (N, 3) under one of GrabCut's fitted colour models.

    OpenCV packs the mixture as the components' weights, then their means (3 each), then their
    covariances (3x3 each).
    """
    count = GRABCUT_COMPONENTS
    packed = model.ravel()
    weights = packed[:count]
    means = packed[count : 4 * count].reshape(count, 3)
    covariances = packed[4 * count :].reshape(count, 3, 3) + np.eye(3) * 1e-3
    used = weights > 0
    weights, means, covariances = weights[used], means[used], covariances[used]
    inverses = np.linalg.inv(covariances)
    offsets = pixels[:, None, :].astype(np.float64) - means[None]
    distances = np.einsum("nki,kij,nkj->nk", offsets, inverses, offsets)
    densities = weights * np.exp(-0.5 * distances) / np.sqrt(np.maximum(np.linalg.det(covariances), 1e-12))
    return np.log(densities.sum(axis=1) + 1e-300)


def _tighten(image: np.ndarray, trimap: np.ndarray, models: tuple) -> np.ndarray:
    """The cut with every row and column of the box holding object (``TIGHTNESS_ROUNDS``); ``trimap`` changes.

    ``trimap`` is GrabCut's result, sure background outside the box; ``models`` its colour models.
    """
    inside = trimap != cv2.GC_BGD
    rows, columns = np.nonzero(inside.any(axis=1))[0], np.nonzero(inside.any(axis=0))[0]
    object_like = np.isin(trimap, (cv2.GC_FGD, cv2.GC_PR_FGD))
    for _ in range(TIGHTNESS_ROUNDS):
        empty_rows = rows[~object_like[rows].any(axis=1)]
        empty_columns = columns[~object_like[:, columns].any(axis=0)]
        if not models[1].any() or (len(empty_rows) == 0 and len(empty_columns) == 0):
            break
        on_lines = np.zeros(inside.shape, bool)  # only the empty lines' pixels are candidates
        on_lines[empty_rows] = on_lines[:, empty_columns] = True
        on_lines &= inside
        background, foreground = (colour_log_likelihood(model, image[on_lines]) for model in models)
        likeness = np.full(inside.shape, -np.inf)
        likeness[on_lines] = foreground - background
        trimap[empty_rows, np.argmax(likeness[empty_rows], axis=1)] = cv2.GC_FGD
        trimap[np.argmax(likeness[:, empty_columns], axis=0), empty_columns] = cv2.GC_FGD
        object_like = _grabcut(image, trimap, models)
    return object_like


def _scaled_for_cut(image: np.ndarray, trimap: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """A picture and its trimap scaled for a cut; the trimap by nearest, so its labels stay labels."""
    height, width = trimap.shape
    size = max(2, round(width * scale)), max(2, round(height * scale))
    picture = cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    return picture, cv2.resize(trimap, size, interpolation=cv2.INTER_NEAREST)


def _apply_seeds(trimap: np.ndarray, seeds: np.ndarray, outside: np.ndarray | None) -> None:
    if outside is not None:
        trimap[outside] = cv2.GC_BGD
    trimap[seeds == FOREGROUND_SEED] = cv2.GC_FGD
    trimap[seeds == BACKGROUND_SEED] = cv2.GC_BGD


def inscribed_ellipse(shape: tuple[int, int], found: tuple[int, int, int, int], share: float = 1.0):
    """The ellipse inscribed in a box (x0, y0, x1, y1), its axes scaled by ``share``, bool."""
    x0, y0, x1, y1 = found
    canvas = np.zeros(shape, np.uint8)
    centre = (x0 + x1 - 1) / 2, (y0 + y1 - 1) / 2
    axes = max(0.5, share * (x1 - x0) / 2), max(0.5, share * (y1 - y0) / 2)
    cv2.ellipse(canvas, (centre, (2 * axes[0], 2 * axes[1]), 0), 1, -1)
    return canvas.astype(bool)


def box_object(image: np.ndarray, outside: np.ndarray) -> tuple[np.ndarray, bool]:
    """GrabCut from a box: inside probably the object, its centre surely, ``outside`` surely not.

    Returns the mask and whether it is the box's ellipse (the cut was not believed), which the
    page tells its user: that mask is a guess from the box alone.

    The crop around the box is scaled (up or down) so its longer side is ``BOX_SIDE``: on a
    small box GrabCut's edge term outweighs its colour term and the object vanishes (it did
    for half the demo's val instances at 320 px), and a large one is slow. Where the cut
    disagrees with the box's inscribed ellipse (IoU under ``BOX_AGREEMENT``) the ellipse is the
    answer: GrabCut then found the background's colours, not the object. Before that, rows and
    columns of the box the cut left empty are filled (``TIGHTNESS_ROUNDS``), and the cut keeps the
    parts touching the box's sure centre, smoothed and without holes (``BOX_SMOOTHING``).
    """
    found = bounding_box(~outside)
    margin = max(MIN_MARGIN, int(MARGIN_SHARE * max(found[2] - found[0], found[3] - found[1])))
    window = _around(found, margin, outside.shape)
    trimap = np.where(outside[window], cv2.GC_BGD, cv2.GC_PR_FGD).astype(np.uint8)
    offset = window[1].start, window[0].start
    local = (found[0] - offset[0], found[1] - offset[1], found[2] - offset[0], found[3] - offset[1])
    trimap[inscribed_ellipse(trimap.shape, local, BOX_CORE)] = cv2.GC_FGD
    height, width = trimap.shape
    resized, resized_trimap = _scaled_for_cut(image[window], trimap, BOX_SIDE / max(height, width))
    models = empty_models()
    _grabcut(resized, resized_trimap, models)
    cut = _tighten(resized, resized_trimap, models).astype(np.float32)
    result = np.zeros(outside.shape, bool)
    result[window] = cv2.resize(cut, (width, height), interpolation=cv2.INTER_AREA) >= 0.5
    result &= ~outside
    result = _tidied_cut(result, outside, inscribed_ellipse(outside.shape, found, BOX_CORE))
    ellipse = inscribed_ellipse(outside.shape, found) & ~outside
    agreement = np.count_nonzero(result & ellipse) / max(1, np.count_nonzero(result | ellipse))
    return (result, False) if agreement >= BOX_AGREEMENT else (ellipse, True)


def _tidied_cut(cut: np.ndarray, outside: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """The box's cut without the parts that miss its sure ``centre``, smoothed and without holes.

    Smoothing gives back a row or column of the box it emptied: a thin part the cut found there
    (see ``TIGHTNESS_ROUNDS``) is narrower than the median's square.
    """
    whole = seeded_components(cut, cut & centre)
    result = smoothed(whole, BOX_SMOOTHING) & ~outside
    emptied_rows, emptied_columns = (whole.any(axis=axis) & ~result.any(axis=axis) for axis in (1, 0))
    result[emptied_rows] |= whole[emptied_rows]
    result[:, emptied_columns] |= whole[:, emptied_columns]
    return filled_holes(result)  # the outside reaches the picture's border, so it is never a hole


def click_object(
    gradient: np.ndarray, mark: np.ndarray, seeds: np.ndarray, outside: np.ndarray | None = None
) -> np.ndarray:
    """A lone positive mark -> the object: watershed between the mark and a ring around it.

    The ring is ``FIRST_RING_SHARE`` of the shorter side away; older negative marks and the
    outside of a box are background too.
    """
    radius = FIRST_RING_SHARE * min(mark.shape)
    window = _around(bounding_box(mark), int(radius) + 2, mark.shape)
    markers = np.zeros(mark[window].shape, np.int32)
    markers[~_disc_around(markers.shape, mark[window], radius)] = 2
    if outside is not None:
        markers[outside[window]] = 2
    markers[seeds[window] == BACKGROUND_SEED] = 2
    markers[seeds[window] == FOREGROUND_SEED] = 1
    markers[mark[window]] = 1
    from skimage.segmentation import watershed

    result = np.zeros(mark.shape, bool)
    result[window] = watershed(gradient[window], markers) == 1
    return seeded_components(result, mark)


def correct(
    image: np.ndarray,
    gradient: np.ndarray,
    mask: np.ndarray,
    seeds: np.ndarray,
    mark: np.ndarray,
    positive: bool,
    outside: np.ndarray | None = None,
) -> np.ndarray:
    """The current object corrected by its newest mark, near that mark only.

    A positive mark can only add pixels and a negative one only remove them, within
    ``WINDOW_SHARE`` times the mark's distance to the other side of the mask or the picture's
    border (a click in the middle of a missing band is about that far from both of its edges),
    and what changes must touch the mark. So a click fixes the error it is in and cannot undo the
    rest of the object, where a global graph cut loses its users (and their clicks). The mark grows to
    ``SEED_SHARE`` of that distance; a thin band along the edge moves the edge (``NUDGE_REACH``);
    otherwise GrabCut decides near the mark, with the rest of the mask as sure object or sure
    background. The result is smoothed near what changed (``SMOOTHING``), and a positive mark
    fills the mask's holes that no negative mark holds.
    """
    if positive and not mask.any():
        return click_object(gradient, mark, seeds, outside)
    other_side = mask if positive else ~mask
    if not other_side.any():
        return mask | mark if positive else mask & ~mark
    # The picture's border bounds the error the mark is in as the other side does: a click on the border of
    # an object that fills the picture marks a corner, not a disc reaching the far side of the picture (it
    # took 41 % of such an object on a demo val instance at 320 px).
    padded = np.pad((~other_side).astype(np.uint8), 1)
    distance = cv2.distanceTransform(padded, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]
    reach = float(distance[mark].max())
    grown = _disc_around(mask.shape, mark, SEED_SHARE * reach) & ~other_side
    if outside is not None:
        grown &= ~outside | mark  # the mark is the user's; the disc around it stays in the box
    margin = int(max(MIN_WINDOW, WINDOW_SHARE * reach)) + 1
    window = _around(bounding_box(mark), 2 * margin, mask.shape)
    current, near_mark = mask[window], mark[window]
    box_outside = None if outside is None else outside[window]
    if reach <= NUDGE_REACH:
        changed = _nudge(current, near_mark, reach, positive)
        changed = (changed & _colour_side(image[window], current, changed, positive)) | near_mark
        if box_outside is not None and positive:
            changed &= ~box_outside
        changed &= seeds[window] != (BACKGROUND_SEED if positive else FOREGROUND_SEED)
    else:
        nearby = _disc_around(current.shape, near_mark, margin)
        if positive:
            trimap = np.where(current, cv2.GC_FGD, np.where(nearby, cv2.GC_PR_BGD, cv2.GC_BGD))
        else:
            trimap = np.where(current, np.where(nearby, cv2.GC_PR_FGD, cv2.GC_FGD), cv2.GC_BGD)
        trimap = trimap.astype(np.uint8)
        _apply_seeds(trimap, seeds[window], box_outside)
        trimap[grown[window]] = cv2.GC_FGD if positive else cv2.GC_BGD
        changed = _cut_changes(image[window], trimap, current) & nearby
    changed = seeded_components(changed, grown[window] | near_mark) if changed.any() else changed
    result = mask.copy()
    result[window][changed] = positive
    result[grown] = positive
    result = _tidied_correction(result, mask, seeds, positive, outside)
    result[grown] = positive
    result[seeds == FOREGROUND_SEED] = True
    result[seeds == BACKGROUND_SEED] = False
    return result


def _tidied_correction(
    result: np.ndarray, mask: np.ndarray, seeds: np.ndarray, positive: bool, outside: np.ndarray | None
) -> np.ndarray:
    """A correction smoothed near what it changed, still only adding (positive) or only removing.

    A positive one also fills the holes no negative mark holds; the tidying adds nothing outside
    the box (the marks themselves are kept by the caller, wherever they are).
    """
    reach_square = np.ones((2 * SMOOTHING_REACH + 1,) * 2, np.uint8)
    tidied = smoothed(result, SMOOTHING, cv2.dilate((result != mask).astype(np.uint8), reach_square) > 0)
    if not positive:
        return tidied & mask
    tidied = filled_holes(tidied | mask, seeds == BACKGROUND_SEED)
    return tidied if outside is None else tidied & (~outside | result)


def _cut_changes(image: np.ndarray, trimap: np.ndarray, current: np.ndarray) -> np.ndarray:
    """Where GrabCut on ``trimap`` decides against ``current``, wide windows cut on a smaller copy.

    A window wider than ``CORRECTION_SIDE`` is cut on a copy that wide; the cut is scaled back and
    compared with ``current`` at full size (comparing on the copy left a seam of unfilled pixels
    along the old edge).
    """
    height, width = current.shape
    scale = CORRECTION_SIDE / max(height, width)
    if scale >= 1:
        return _grabcut(image, trimap) != current
    cut = _grabcut(*_scaled_for_cut(image, trimap, scale)).astype(np.uint8)
    return cv2.resize(cut, (width, height), interpolation=cv2.INTER_NEAREST).astype(bool) != current


def _colour_side(image: np.ndarray, current: np.ndarray, band: np.ndarray, positive: bool) -> np.ndarray:
    """The band's pixels whose colour is nearer the click's side's local colour than the other side's.

    The object's and the background's colours are averaged over ``ALPHA_KERNEL`` squares,
    outside the band; a pixel's share of the object (its "alpha") is its colour projected on the
    line between the two. A positive click takes the pixels at least half object, a negative
    one those under half; where one side has no pixel near, nothing is decided.
    """
    picture = image.astype(np.float32)
    size = (ALPHA_KERNEL, ALPHA_KERNEL)

    def local_mean(side: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        weight = (side & ~band).astype(np.float32)
        total = cv2.boxFilter(picture * weight[..., None], -1, size, normalize=False)
        count = cv2.boxFilter(weight, -1, size, normalize=False)
        return total / np.maximum(count, 1e-6)[..., None], count

    (fore, fore_count), (back, back_count) = local_mean(current), local_mean(~current)
    difference = fore - back
    alpha = ((picture - back) * difference).sum(-1) / np.maximum((difference**2).sum(-1), 1e-6)
    known = (fore_count > 0) & (back_count > 0)
    return known & ((alpha >= 0.5) if positive else (alpha < 0.5))


def _nudge(current: np.ndarray, mark: np.ndarray, reach: float, positive: bool) -> np.ndarray:
    """The band the mask's edge moves across near the mark: out by ``reach`` (positive) or in."""
    size = 2 * max(1, round(reach)) + 1
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    as_bytes = current.astype(np.uint8)
    if positive:
        band = cv2.dilate(as_bytes, kernel).astype(bool) & ~current
    else:
        band = current & ~cv2.erode(as_bytes, kernel).astype(bool)
    if reach <= 1.0:  # a one-pixel sliver: only the clicked pixels (any wider band took good pixels too)
        return band & mark
    return band & _disc_around(current.shape, mark, NUDGE_WINDOW * reach)


def wand_region(smoothed: np.ndarray, x: int, y: int, tolerance: int) -> np.ndarray:
    """The pixels 4-connected to (x, y) whose colour is within ``tolerance`` of the seed's, per channel.

    The range is fixed to the clicked colour (not pixel to pixel), so a fill does not creep
    along a smooth gradient into the next object.
    """
    height, width = smoothed.shape[:2]
    filled = np.zeros((height + 2, width + 2), np.uint8)
    flags = 4 | cv2.FLOODFILL_FIXED_RANGE | cv2.FLOODFILL_MASK_ONLY | (1 << 8)
    bounds = (tolerance,) * 3
    cv2.floodFill(smoothed.copy(), filled, (x, y), (0, 0, 0), bounds, bounds, flags)
    return filled[1:-1, 1:-1].astype(bool)


def snap_region(superpixels: np.ndarray, points, radius: int) -> np.ndarray:
    """The superpixels a brush stroke covers at least ``SNAP_COVER`` of, or whose centre line crosses them."""
    brush, centre = paint_mark(superpixels.shape, points, radius), paint_mark(superpixels.shape, points, 0)
    count = int(superpixels.max()) + 1
    covered = np.bincount(superpixels[brush], minlength=count)
    sizes = np.bincount(superpixels.ravel(), minlength=count)
    chosen = covered >= SNAP_COVER * sizes
    chosen[np.unique(superpixels[centre])] = True
    return chosen[superpixels]


def model_region(prediction: np.ndarray, x: int, y: int) -> tuple[np.ndarray, int]:
    """The connected region (8-connected) of the predicted class under (x, y), and that class.

    Background (0) and ignored (255) pixels are regions too; the caller decides what to do with them.
    """
    label = int(prediction[y, x])
    _, components = cv2.connectedComponents((prediction == label).astype(np.uint8), connectivity=8)
    return components == components[y, x], label
