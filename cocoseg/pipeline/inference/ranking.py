"""Which images to correct first: a model's (or ensemble's) uncertainty over a split, ranked.

``rank_split`` runs the model through ONNX Runtime on every image of a registered split
(annotated or not), scores each image (``uncertainty``: entropy, margin, and for ensembles
disagreement and BALD from the members' own probabilities) and writes the ranking to
``<workspace>/rankings/<model>/<dataset>.<split>.json`` with one uncertainty picture per
image beside it. Scores are cached per model file hash and image file (path, size, mtime),
so ranking the same split again only reads the cache.

Rarity weights each pixel's entropy by how rare its predicted class is. On an annotated split
the class shares come from the annotations (their areas, through the model's label map), so
the split's categories must fit the model's label map, else the ranking is refused naming
both; on an unlabelled split they come from the predictions themselves.

An image that cannot be read is skipped, counted and listed; the ranking goes on. A cancel
(the progress callback raises) keeps the images scored so far, written as a partial ranking.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np

from cocoseg.pipeline.core.cache import CACHE_EXPIRE_SECONDS, open_cache
from cocoseg.pipeline.core.workspace import (
    UnsafePathError,
    Workspace,
    atomic_write_bytes,
    atomic_write_json,
    check_name,
    now_iso,
    read_json,
    resolve_inside,
)
from cocoseg.pipeline.data.coco import load_coco
from cocoseg.pipeline.data.geometry import placement
from cocoseg.pipeline.data.images import ImageError, read_rgb
from cocoseg.pipeline.data.labels import LabelMap, LabelMapError, build_label_map
from cocoseg.pipeline.data.registry import get_dataset
from cocoseg.pipeline.data.rendering import encode_jpeg
from cocoseg.pipeline.inference.ensembles import combine
from cocoseg.pipeline.inference.model_store import ModelEntry, get_entry
from cocoseg.pipeline.inference.predictor import Predictor
from cocoseg.pipeline.inference.uncertainty import (
    ENSEMBLE_SCORES,
    SCORES,
    class_weights,
    heat_picture,
    image_scores,
    pixel_entropy,
)

logger = logging.getLogger(__name__)

BATCH_SIZE = 8
MAP_WIDTH = 160  # the uncertainty picture's width, a thumbnail's (the image's aspect ratio is kept)
CLASS_SHARE_SHOWN = 0.01  # a predicted class is listed for an image from 1 % of its pixels
RANKING_FORMAT = 1
_CACHE_VERSION = 3  # 2: the picture is a JPEG; 3: in the image's own range
ProgressCallback = Callable[[int, int], None]


class RankingError(ValueError):
    """A ranking that cannot be made (unknown score, a score the model cannot give, label maps
    that do not fit); the message says what to do."""


@dataclasses.dataclass(frozen=True)
class RankedImage:
    """One image of a ranking: its scores (None where not applicable) and predicted classes."""

    file_name: str
    image_id: int
    scores: dict
    classes: list[str]
    picture: str  # the uncertainty picture, relative to the ranking's folder

    def score(self, by: str) -> float:
        value = self.scores.get(by)
        return -1.0 if value is None else float(value)


@dataclasses.dataclass(frozen=True)
class Ranking:
    """A saved ranking (``ranking_file``): what was ranked, with what, and how far it got."""

    model: str
    model_sha256: str
    dataset: str
    split: str
    by: str
    created: str
    images: int
    partial: bool
    skipped: list[dict]
    rows: list[RankedImage]
    unlabelled: bool = False

    def to_dict(self) -> dict:
        return {"format": RANKING_FORMAT, **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, payload: dict) -> Ranking:
        fields = {field.name for field in dataclasses.fields(cls)}
        values = {key: value for key, value in payload.items() if key in fields}
        values["rows"] = [RankedImage(**row) for row in payload.get("rows", [])]
        return cls(**values)

    def ordered(self, by: str | None = None) -> list[RankedImage]:
        """Most uncertain first by ``by`` (default: the score it was ranked by); ties by file name."""
        by = by or self.by
        return sorted(self.rows, key=lambda row: (-row.score(by), row.file_name))

    @property
    def available_scores(self) -> list[str]:
        return [name for name in SCORES if any(row.scores.get(name) is not None for row in self.rows)]


def ranking_folder(workspace: Workspace, model: str) -> Path:
    check_name(model, "model")
    return workspace.root / "rankings" / model


def ranking_file(workspace: Workspace, model: str, dataset: str, split: str) -> Path:
    check_name(dataset, "dataset")
    check_name(split, "split")
    return ranking_folder(workspace, model) / f"{dataset}.{split}.json"


def pictures_folder(workspace: Workspace, model: str, dataset: str, split: str) -> Path:
    return ranking_folder(workspace, model) / f"{dataset}.{split}"


def load_ranking(workspace: Workspace, model: str, dataset: str, split: str) -> Ranking | None:
    """The saved ranking of a split by a model, or None when there is none (or it is unreadable)."""
    payload = read_json(ranking_file(workspace, model, dataset, split))
    if not isinstance(payload, dict) or payload.get("format") != RANKING_FORMAT:
        return None
    try:
        return Ranking.from_dict(payload)
    except (TypeError, KeyError):
        return None


def picture_path(workspace: Workspace, ranking: Ranking, row: RankedImage) -> Path:
    return resolve_inside(ranking_folder(workspace, ranking.model), row.picture)


# --- the models ------------------------------------------------------------------------------


@dataclasses.dataclass
class _Scorer:
    """The model to rank with: one predictor, or an ensemble's members run one by one."""

    entry: ModelEntry
    predictors: list[Predictor]
    strategy: str = ""
    weights: Sequence[float] = ()

    @property
    def fingerprint(self) -> str:
        hashes = [self.entry.card["sha256"]] + [
            predictor.entry.card["sha256"] for predictor in self.predictors
        ]
        return ":".join(hashes)

    def probabilities(self, batch: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """(N, S, S, C) probabilities and, for an ensemble, each member's."""
        if not self.strategy:
            return self.predictors[0].run_batch(batch, probabilities=True)[1], []
        members = [predictor.run_batch(batch, probabilities=True)[1] for predictor in self.predictors]
        _mask, combined = combine(members, self.strategy, self.weights)
        return combined / np.maximum(combined.sum(axis=-1, keepdims=True), 1e-12), members


def _scorer(workspace: Workspace, entry: ModelEntry) -> _Scorer:
    if entry.kind != "ensemble":
        return _Scorer(entry, [Predictor(entry)])
    members = [get_entry(workspace, name) for name in entry.card.get("members", [])]
    return _Scorer(
        entry, [Predictor(member) for member in members], entry.card["strategy"], entry.card["weights"]
    )


def check_score(entry: ModelEntry, by: str) -> None:
    """Refuse a score the model cannot give (disagreement and BALD need an ensemble's members)."""
    if by not in SCORES:
        raise RankingError(f"rank by one of {', '.join(SCORES)}, not {by!r}")
    if by in ENSEMBLE_SCORES and entry.kind != "ensemble":
        raise RankingError(
            f"{by} compares an ensemble's members and {entry.name} is a single model; "
            "rank with an ensemble, or by entropy or margin"
        )


# --- one image -------------------------------------------------------------------------------


def covered_region(width: int, height: int, size: int, mode: str) -> np.ndarray:
    """(size, size) True where the model's input square shows the image (not letterbox padding)."""
    where = placement(width, height, size, mode)
    region = np.zeros((size, size), dtype=bool)
    top, left = max(0, where.offset_y), max(0, where.offset_x)
    region[top : top + where.resized_height, left : left + where.resized_width] = True
    return region


def _picture_jpeg(entropy: np.ndarray, region: np.ndarray, width: int, height: int) -> bytes:
    """The uncertainty picture of the image's part of the square, at ``MAP_WIDTH`` and the image's aspect
    (a JPEG of a few KB, so a queue of a hundred stays light). Its colours span the image's own entropy
    range (2nd to 98th percentile): the score compares images, the picture shows where within one."""
    rows, columns = np.nonzero(region)
    shown = heat_picture(entropy, region)[rows.min() : rows.max() + 1, columns.min() : columns.max() + 1]
    target = (MAP_WIDTH, max(1, round(MAP_WIDTH * height / width)))
    return encode_jpeg(cv2.resize(shown, target, interpolation=cv2.INTER_LINEAR), quality=85)


def score_image(
    probabilities: np.ndarray, members: Sequence[np.ndarray], width: int, height: int, mode: str
) -> dict:
    """What is cached per image: the scores, per-class pixels and entropy (for rarity), the picture."""
    size, classes = probabilities.shape[0], probabilities.shape[-1]
    region = covered_region(width, height, size, mode)
    entropy = pixel_entropy(probabilities)
    predicted = probabilities.argmax(axis=-1)[region]
    return {
        "scores": image_scores(probabilities, members, region),
        "class_pixels": np.bincount(predicted, minlength=classes).tolist(),
        "class_entropy": np.bincount(predicted, weights=entropy[region], minlength=classes).tolist(),
        "picture": _picture_jpeg(entropy, region, width, height),
    }


def rarity(record: dict, weights: np.ndarray) -> float:
    """Mean over the image of entropy x the predicted class's weight, over the largest weight."""
    pixels = max(1, sum(record["class_pixels"]))
    return float(np.dot(weights, record["class_entropy"]) / pixels / weights.max())


# --- the split -------------------------------------------------------------------------------


def annotated_class_pixels(coco, label_map: LabelMap) -> np.ndarray:
    """Pixels per class of an annotated split, from the annotations' areas (background: the rest)."""
    counts = np.zeros(label_map.num_classes, dtype=np.float64)
    for annotation in coco.annotations:
        if not annotation.get("iscrowd", 0):
            counts[label_map.class_of(annotation["category_id"])] += float(annotation.get("area", 0.0))
    image_area = sum(float(image["width"]) * float(image["height"]) for image in coco.images)
    counts[0] = max(0.0, image_area - counts[1:].sum())
    return counts


def dataset_label_map(entry: ModelEntry, categories: list[dict]) -> LabelMap:
    """The split's categories under the model's label map; refused (naming both) when they do not fit."""
    model_map = entry.label_map()
    names = model_map.class_names[1:] if model_map.name == "custom" else ()
    try:
        fitted = build_label_map(model_map.name, categories, names)
    except LabelMapError as error:
        fitted, reason = None, str(error)
    else:
        reason = ""
    if fitted is None or not fitted.same_classes(model_map):
        raise RankingError(
            f"{entry.name} predicts the {model_map.name} label map ({model_map.num_classes} classes) "
            f"but this split's {len(categories)} categories do not give the same classes"
            + (f" ({reason})" if reason else "")
            + "; rank with a model trained on this label map, or by entropy or margin"
        )
    return fitted


@dataclasses.dataclass(frozen=True)
class RankedSplit:
    """What a ranking covers: the split, its images, the score it is ordered by, the rarity prior.

    ``prior`` is the annotated class pixels, or None: then the predictions' own class pixels
    on an unlabelled split, and no rarity on an annotated split whose classes do not fit."""

    dataset: str
    split: str
    by: str
    images: list[dict]
    unlabelled: bool
    prior: np.ndarray | None


def rank_split(
    workspace: Workspace,
    model: str,
    dataset: str,
    split: str,
    max_bytes: int,
    by: str = "entropy",
    progress: ProgressCallback | None = None,
) -> Ranking:
    """Score every image of ``dataset/split`` with ``model`` and save the ranking (see the module doc).

    Raises:
        RankingError / ModelError / RegistryError: what cannot be ranked, and why.
    """
    entry = get_entry(workspace, model)
    check_score(entry, by)
    source = get_dataset(workspace, dataset).split(split)
    coco = load_coco(source.annotations, None, max_bytes)
    unlabelled = not coco.annotations
    prior = None if unlabelled else _annotated_prior(entry, coco, required=by == "rarity")
    scorer = _scorer(workspace, entry)
    records: dict[int, dict] = {}
    skipped: list[dict] = []
    partial = True
    try:
        with open_cache(workspace, "ranking") as cache:
            _score_images(scorer, coco.images, source.images, cache, records, skipped, progress)
        partial = False
    finally:  # a cancel (the progress callback raised) keeps what was scored, marked partial
        ranking = _write_ranking(
            workspace,
            entry,
            RankedSplit(dataset, split, by, coco.images, unlabelled, prior),
            records,
            skipped,
            partial,
        )
    return ranking


def _annotated_prior(entry: ModelEntry, coco, required: bool) -> np.ndarray | None:
    """Class pixels of an annotated split for rarity; None (rarity n/a) when the label maps do not fit,
    unless ranking by rarity, which is then refused."""
    try:
        return annotated_class_pixels(coco, dataset_label_map(entry, coco.categories))
    except RankingError:
        if required:
            raise
        return None


def _score_images(scorer: _Scorer, images, folder: Path, cache, records, skipped, progress) -> None:
    """Fill ``records`` (image id -> cached record) and ``skipped``, a batch at a time."""
    pending: list[tuple[dict, tuple, np.ndarray]] = []
    predictor = scorer.predictors[0]

    def flush() -> None:
        if not pending:
            return
        batch = np.stack([predictor.prepare(picture) for _image, _key, picture in pending])
        probabilities, members = scorer.probabilities(batch)
        for index, (image, key, picture) in enumerate(pending):
            record = score_image(
                probabilities[index],
                [member[index] for member in members],
                picture.shape[1],
                picture.shape[0],
                predictor.resize,
            )
            cache.set(key, record, expire=CACHE_EXPIRE_SECONDS)
            records[image["id"]] = record
        pending.clear()

    for done, image in enumerate(images, start=1):
        try:
            path = resolve_inside(folder, image["file_name"])
            status = path.stat()
            key = ("rank", _CACHE_VERSION, scorer.fingerprint, str(path), status.st_size, status.st_mtime_ns)
            record = cache.get(key)
            if record is None:
                pending.append((image, key, read_rgb(path)))
            else:
                records[image["id"]] = record
        except (UnsafePathError, ImageError, OSError) as error:
            reason = str(error) if isinstance(error, (UnsafePathError, ImageError)) else "cannot be read"
            skipped.append({"file_name": image["file_name"], "reason": reason})
            logger.warning("ranking skips %s: %s", image["file_name"], reason)
        if len(pending) == BATCH_SIZE:
            flush()
        if progress and (done % BATCH_SIZE == 0 or done == len(images)):
            flush()
            progress(done, len(images))
    flush()


def _write_ranking(
    workspace: Workspace,
    entry: ModelEntry,
    target: RankedSplit,
    records: dict[int, dict],
    skipped: list[dict],
    partial: bool,
) -> Ranking:
    """Write the pictures and the ranking file (atomically) from the scored records."""
    prior = target.prior
    if prior is None and target.unlabelled and records:
        prior = np.sum([record["class_pixels"] for record in records.values()], axis=0)
    weights = class_weights(prior) if prior is not None else None
    label_map = entry.label_map()
    folder = pictures_folder(workspace, entry.name, target.dataset, target.split)
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for image in target.images:
        record = records.get(image["id"])
        if record is None:
            continue
        scores = dict(record["scores"])
        scores["rarity"] = rarity(record, weights) if weights is not None else None
        pixels = max(1, sum(record["class_pixels"]))
        classes = [
            label_map.class_names[index]
            for index, count in enumerate(record["class_pixels"])
            if index > 0 and count / pixels >= CLASS_SHARE_SHOWN
        ]
        picture = folder / f"{image['id']}.jpg"
        atomic_write_bytes(picture, record["picture"])
        rows.append(
            RankedImage(image["file_name"], image["id"], scores, classes, f"{folder.name}/{picture.name}")
        )
    ranking = Ranking(
        model=entry.name,
        model_sha256=entry.card["sha256"],
        dataset=target.dataset,
        split=target.split,
        by=target.by,
        created=now_iso(),
        images=len(target.images),
        partial=partial,
        skipped=skipped,
        rows=rows,
        unlabelled=target.unlabelled,
    )
    ranking = dataclasses.replace(ranking, rows=ranking.ordered(target.by))
    atomic_write_json(ranking_file(workspace, entry.name, target.dataset, target.split), ranking.to_dict())
    return ranking


# --- the review queue ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class QueueItem:
    """One image of the review queue: its place in the ranking and whether it was corrected already."""

    rank: int
    row: RankedImage
    corrected: bool


def review_queue(
    ranking: Ranking, by: str | None = None, classes: Sequence[str] = (), corrected: Sequence[str] = ()
) -> list[QueueItem]:
    """The ranking as a queue: most uncertain first by ``by``, only images predicted to hold one of
    ``classes`` (all when empty), and the images already ``corrected`` (file names) at the end."""
    wanted, done = set(classes), set(corrected)
    items = [
        QueueItem(rank, row, row.file_name in done)
        for rank, row in enumerate(ranking.ordered(by), start=1)
        if not wanted or wanted.intersection(row.classes)
    ]
    return sorted(items, key=lambda item: item.corrected)  # stable: rank order within each group


def queue_pictures(
    workspace: Workspace, ranking: Ranking, items: Sequence[QueueItem]
) -> list[tuple[bytes | None, bytes | None]]:
    """(thumbnail JPEG, uncertainty JPEG) of each queued image; None where a file is gone or unreadable."""
    from cocoseg.pipeline.data.thumbnails import thumbnail

    folder = get_dataset(workspace, ranking.dataset).split(ranking.split).images
    pictures = []
    for item in items:
        try:
            image = thumbnail(workspace, resolve_inside(folder, item.row.file_name))
        except (UnsafePathError, ImageError, OSError):
            image = None
        try:
            heat = picture_path(workspace, ranking, item.row).read_bytes()
        except (UnsafePathError, OSError):
            heat = None
        pictures.append((image, heat))
    return pictures
