"""How unsure a model is about one image: scores from per-pixel softmax probabilities.

Every score is a mean over the pixels that come from the image (``region``: letterbox
padding is left out) and lies in [0, 1], higher meaning "correct this one first":

    entropy       mean pixel entropy, divided by log(C) so that uniform probabilities give 1
                  and one-hot probabilities give 0.
    margin        1 minus the mean gap between the two highest probabilities (1: a tie
                  everywhere, 0: certain everywhere).
    disagreement  (ensembles) the share of pixels where the members' argmax are not all the
                  same class.
    bald          (ensembles) mutual information between the prediction and the member
                  (entropy of the mean minus the mean of the members' entropies, over log C),
                  as in BALD (Houlsby et al., 2011): high where members are each sure but
                  differ, low where they are unsure alike.
    rarity        pixel entropy weighted by the rarity of the pixel's predicted class
                  (median-frequency weights, Eigen & Fergus 2015, clipped to [0.1, 10]),
                  divided by the largest weight: unsure pixels of rare classes count most.

The functions are pure numpy; ``ranking`` runs the models and calls them, and the
active-learning benchmark calls them on Keras probabilities directly.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

SCORES = ("entropy", "margin", "disagreement", "bald", "rarity")
ENSEMBLE_SCORES = ("disagreement", "bald")  # need the members' own probabilities
SCORE_DESCRIPTIONS = {
    "entropy": "mean pixel entropy (0 certain, 1 uniform)",
    "margin": "1 minus the mean gap between the top two probabilities",
    "disagreement": "share of pixels where the ensemble's members disagree",
    "bald": "mutual information between prediction and member (BALD)",
    "rarity": "entropy weighted by how rare the predicted class is",
}
WEIGHT_LIMITS = (0.1, 10.0)
_TINY = 1e-12


def _check(probabilities: np.ndarray) -> np.ndarray:
    probabilities = np.asarray(probabilities, dtype=np.float32)
    if probabilities.ndim != 3 or probabilities.shape[-1] < 2:
        raise ValueError(f"probabilities must be (height, width, classes >= 2), got {probabilities.shape}")
    return probabilities


def _mean_over(values: np.ndarray, region: np.ndarray | None) -> float:
    if region is None:
        return float(values.mean())
    if region.shape != values.shape:
        raise ValueError(f"region {region.shape} does not match the map {values.shape}")
    return float(values[region].mean()) if region.any() else 0.0


def pixel_entropy(probabilities: np.ndarray) -> np.ndarray:
    """(H, W) entropy of each pixel's class distribution, in [0, 1] (divided by log C)."""
    probabilities = _check(probabilities)
    clipped = np.clip(probabilities, _TINY, 1.0)
    entropy = -(probabilities * np.log(clipped)).sum(axis=-1)
    return np.clip(entropy / np.log(probabilities.shape[-1]), 0.0, 1.0)


def pixel_margin(probabilities: np.ndarray) -> np.ndarray:
    """(H, W) 1 minus the gap between each pixel's two highest probabilities."""
    top_two = np.sort(_check(probabilities), axis=-1)[..., -2:]
    return np.clip(1.0 - (top_two[..., 1] - top_two[..., 0]), 0.0, 1.0)


def pixel_disagreement(members: Sequence[np.ndarray]) -> np.ndarray:
    """(H, W) True where the members' argmax are not all the same class."""
    labels = np.stack([_check(member).argmax(axis=-1) for member in members])
    return (labels != labels[0]).any(axis=0)


def pixel_bald(members: Sequence[np.ndarray]) -> np.ndarray:
    """(H, W) mutual information between prediction and member, in [0, 1]."""
    checked = [_check(member) for member in members]
    mean = np.mean(checked, axis=0)
    return np.clip(pixel_entropy(mean) - np.mean([pixel_entropy(member) for member in checked], axis=0), 0, 1)


def class_weights(pixel_counts: Sequence[float]) -> np.ndarray:
    """Median-frequency weights: median share / class share, clipped; absent classes get the top weight."""
    counts = np.asarray(pixel_counts, dtype=np.float64)
    total = counts.sum()
    low, high = WEIGHT_LIMITS
    if total <= 0:
        return np.ones_like(counts)
    shares = counts / total
    present = shares > 0
    median = np.median(shares[present])
    weights = np.full_like(shares, high)
    weights[present] = median / shares[present]
    return np.clip(weights, low, high)


def pixel_rarity(probabilities: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(H, W) pixel entropy times the weight of the pixel's predicted class, over the largest weight."""
    probabilities = _check(probabilities)
    weights = np.asarray(weights, dtype=np.float32)
    if weights.shape != (probabilities.shape[-1],):
        raise ValueError(f"{weights.shape[0]} class weights for {probabilities.shape[-1]} classes")
    return pixel_entropy(probabilities) * weights[probabilities.argmax(axis=-1)] / weights.max()


def image_scores(
    probabilities: np.ndarray,
    members: Sequence[np.ndarray] = (),
    region: np.ndarray | None = None,
    weights: np.ndarray | None = None,
) -> dict[str, float | None]:
    """Every score of one image (None where it does not apply: no members, no class weights)."""
    entropy = pixel_entropy(probabilities)
    scores: dict[str, float | None] = {
        "entropy": _mean_over(entropy, region),
        "margin": _mean_over(pixel_margin(probabilities), region),
        "disagreement": None,
        "bald": None,
        "rarity": None,
    }
    if len(members) >= 2:
        scores["disagreement"] = _mean_over(pixel_disagreement(members).astype(np.float32), region)
        scores["bald"] = _mean_over(pixel_bald(members), region)
    if weights is not None:
        scores["rarity"] = _mean_over(pixel_rarity(probabilities, weights), region)
    return scores


def spread_over_image(entropy: np.ndarray, region: np.ndarray) -> np.ndarray:
    """A [0, 1] map stretched over the image's own range (its 2nd to 98th percentile inside ``region``).

    Scores compare images; a picture shows where within one image the model is unsure, even
    when it is unsure everywhere. A flat map is returned as it is.
    """
    if not region.any():
        return entropy
    low, high = np.percentile(entropy[region], [2, 98])
    if high - low <= 1e-3:
        return entropy
    return np.clip((entropy - low) / (high - low), 0.0, 1.0)


def uncertainty_picture(entropy: np.ndarray, region: np.ndarray | None = None) -> np.ndarray:
    """An (H, W, 3) uint8 heat picture of a [0, 1] map: dark where sure, yellow where unsure; outside
    the region grey."""
    import cv2

    levels = np.clip(np.asarray(entropy, dtype=np.float32) * 255.0, 0, 255).astype(np.uint8)
    picture = cv2.cvtColor(cv2.applyColorMap(levels, cv2.COLORMAP_INFERNO), cv2.COLOR_BGR2RGB)
    if region is not None:
        picture[~region] = (128, 128, 128)
    return picture


def heat_picture(entropy: np.ndarray, region: np.ndarray) -> np.ndarray:
    """The picture of where within one image a model is unsure: ``spread_over_image`` drawn by
    ``uncertainty_picture`` (Review's queue and Annotate's Grow show the same)."""
    return uncertainty_picture(spread_over_image(entropy, region), region)
