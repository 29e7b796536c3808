"""Does uncertainty ranking save labelling effort? A simulation with the ground truth as the oracle.

Each repetition (seed) draws ``per_round`` random images of a training pool as the first
labelled set and trains a small UNet on it. Then, for ``rounds`` rounds, every strategy
"labels" ``per_round`` more images of its own still-unlabelled pool (their ground truth
becomes usable), the model is trained again from scratch on the strategy's labelled set and
evaluated on a fixed val split:

    random        a uniform draw;
    entropy       the highest mean pixel entropy under the current model;
    margin        the smallest mean gap between the top two probabilities;
    disagreement  the largest share of pixels where a committee of two models disagrees: the
                  evaluated model and a second one trained on the same labels from another seed
                  (initial weights and batch order). The second model only votes; it is never
                  evaluated, so the strategy's curve is the same single model as the others'.

Scores are ``cocoseg.pipeline.inference.uncertainty.image_scores``, the functions the Rank
page and ``cocoseg rank`` call on ONNX Runtime's probabilities; here they get the Keras
model's softmax (the exported graph computes the same). Ties keep pool order.

Every training has the same budget: ``steps`` Adam steps of ``batch_size`` images, the same
initial weights and batch-order seed within a repetition, no augmentation, through the
project's compiled step (``training.loop.make_train_step``) and loss (``models.losses``).
One model object and one traced step serve every training: the weights and the optimizer's
state are reset, which saves ~5 s of tracing per training on 2 cores. The data is prepared
once by ``prepare`` and decoded once into arrays. mIoU is computed from one confusion matrix
(``inference.evaluate``) over the val split at the prepared size, not at source resolution.

The model is a UNet with 16 base filters, depth 3, for 100 steps: with 8 filters (150 steps)
whether a class (usually the rare one) was learnt came down to the training seed, even from 24
labelled diamonds (mIoU 75 % or 93 % for the same labels), which buried the choice of images
under training noise; 16 filters learnt every class from the same labels for each of 4 seeds.

Datasets:

    shapes (default)  tests' generated shapes (circle, square, triangle on grey noise), 64 px, plus
                      a fourth class, a magenta diamond, in ~8 % of images. On 2 CPU cores a small
                      UNet learns the common shapes from a few dozen images, so differences come
                      from which images are picked, above all whether the rare class is found,
                      which is what uncertainty ranking promises; it is the favourable case.
    demo              the bundled 80 + 80 real COCO images, voc21, 64 px: the honest case, but a
                      small model on 2 cores barely learns it (a few % mIoU), so the curves are
                      mostly noise.

Reported per strategy and round: mean, standard deviation and min-max of val mIoU over the seeds,
how many images of the pool's rarest class were labelled, and whether the best uncertainty
strategy reaches random's final mIoU with at most 70 % of random's labels (linear interpolation
between rounds on the mean curves).

Usage: python benchmarks/active_learning.py [--dataset shapes|demo] [--seeds 3] [--rounds 4]
    [--per-round 10] [--steps 100] [--base-filters 16] [--size 64] [--plot PATH] [--json PATH]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.coco_scale import machine_description  # noqa: E402
from benchmarks.line_chart import Series, draw_line_chart, save_chart  # noqa: E402
from cocoseg.models.metrics import accumulate, empty_matrix  # noqa: E402
from cocoseg.pipeline.core.workspace import Workspace  # noqa: E402
from cocoseg.pipeline.data.registry import add_dataset  # noqa: E402
from cocoseg.pipeline.inference.evaluate import metrics_from_matrix  # noqa: E402
from cocoseg.pipeline.inference.uncertainty import image_scores  # noqa: E402
from cocoseg.pipeline.prepare.config import PrepareConfig  # noqa: E402
from cocoseg.pipeline.prepare.writer import prepare  # noqa: E402

logger = logging.getLogger("benchmarks.active_learning")

STRATEGIES = ("random", "entropy", "margin", "disagreement")
UNCERTAINTY = STRATEGIES[1:]
TARGET_SHARE = 0.7
MEMBER_SEED = 1000  # the committee's second model: seed + this
LIMIT = 1 << 30
RARE_CATEGORY = {"id": 4, "name": "diamond", "supercategory": "shape"}
RARE_COLOUR = (200, 70, 200)


@dataclasses.dataclass(frozen=True)
class Settings:
    """One simulation's settings (``pool``, ``val`` and ``rare_share`` apply to shapes only)."""

    dataset: str = "shapes"
    size: int = 64
    seeds: int = 3
    rounds: int = 4
    per_round: int = 10
    steps: int = 100
    batch_size: int = 8
    learning_rate: float = 3e-3
    base_filters: int = 16
    depth: int = 3
    pool: int = 240
    val: int = 120
    rare_share: float = 0.08

    def __post_init__(self) -> None:
        if self.dataset not in ("shapes", "demo"):
            raise ValueError(f"dataset: shapes or demo, got {self.dataset!r}")
        if min(self.seeds, self.rounds, self.per_round, self.steps, self.batch_size) < 1:
            raise ValueError("seeds, rounds, per-round, steps and batch size must be >= 1")


@dataclasses.dataclass
class Data:
    """The decoded prepared splits: uint8 images (N, S, S, 3) and masks (N, S, S)."""

    pool_images: np.ndarray
    pool_masks: np.ndarray
    val_images: np.ndarray
    val_masks: np.ndarray
    class_names: tuple[str, ...]
    description: str


def add_rare_class(annotations: Path, image_folder: Path, share: float, seed: int) -> int:
    """Paint a magenta diamond into about ``share`` of a shapes dataset's images and annotate it.

    The diamond is painted last, so where it covers a shape the label map's overlap rule decides
    (ignored pixels by default). Returns how many images got one.
    """
    rng = np.random.default_rng(seed)
    coco = json.loads(annotations.read_text())
    coco["categories"].append(RARE_CATEGORY)
    chosen = [image for image in coco["images"] if rng.random() < share]
    for image in chosen:
        path = image_folder / image["file_name"]
        picture = cv2.imread(str(path))
        radius = float(rng.uniform(8, 14))
        centre = rng.uniform(radius, min(image["width"], image["height"]) - radius, 2)
        polygon = centre + radius * np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])
        colour = np.clip(np.array(RARE_COLOUR) + rng.integers(-20, 21, 3), 0, 255)
        cv2.fillPoly(
            picture, [np.round(polygon).astype(np.int32)], tuple(int(value) for value in colour[::-1])
        )
        cv2.imwrite(str(path), picture)
        xs, ys = polygon[:, 0], polygon[:, 1]
        coco["annotations"].append(
            {
                "id": len(coco["annotations"]) + 1,
                "image_id": image["id"],
                "category_id": RARE_CATEGORY["id"],
                "iscrowd": 0,
                "segmentation": [[round(float(value), 2) for value in polygon.ravel()]],
                "bbox": [float(xs.min()), float(ys.min()), float(np.ptp(xs)), float(np.ptp(ys))],
                "area": 2.0 * radius * radius,
            }
        )
    annotations.write_text(json.dumps(coco))
    return len(chosen)


def _decode(prepared, split: str) -> tuple[np.ndarray, np.ndarray]:
    from cocoseg.pipeline.training.input import evaluation_dataset

    batches = list(evaluation_dataset(prepared, split, batch_size=64).as_numpy_iterator())
    return np.concatenate([images for images, _ in batches]), np.concatenate([masks for _, masks in batches])


def load_data(settings: Settings, folder: Path) -> Data:
    """Write (shapes) or take (demo) the dataset, prepare it once and decode both splits."""
    from tests.pipeline.shapes import write_shapes_dataset

    workspace = Workspace(folder / "workspace").ensure()
    if settings.dataset == "shapes":
        rare = {}
        for split, count, seed in (("train", settings.pool, 1), ("val", settings.val, 2)):
            annotations, images = write_shapes_dataset(folder / split, count, seed)
            rare[split] = add_rare_class(annotations, images, settings.rare_share, seed + 10)
            add_dataset(workspace, "shapes", annotations, images, split=split, max_bytes=LIMIT)
        config = PrepareConfig("shapes", size=settings.size, shards=1, workers=1)
        description = (
            f"generated shapes (tests/pipeline/shapes.py) + a rare magenta diamond in "
            f"{rare['train']}/{settings.pool} pool and {rare['val']}/{settings.val} val images"
        )
    else:
        config = PrepareConfig("demo", labels="voc21", size=settings.size, shards=1, workers=1)
        description = "the bundled demo (real COCO images, voc21)"
    prepared = prepare(workspace, config, LIMIT)
    pool_images, pool_masks = _decode(prepared, "train")
    val_images, val_masks = _decode(prepared, "val")
    return Data(
        pool_images,
        pool_masks,
        val_images,
        val_masks,
        prepared.label_map().class_names,
        f"{description}, prepared at {settings.size} px",
    )


class Trainer:
    """One model and one compiled training step, reset to a seed's initial state per training."""

    def __init__(self, settings: Settings, num_classes: int) -> None:
        import keras

        from cocoseg.models.losses import cross_entropy
        from cocoseg.models.registry import build_model
        from cocoseg.pipeline.core.tf_runtime import tensorflow
        from cocoseg.pipeline.training.loop import make_train_step

        self.tf, self.keras, self.settings = tensorflow(), keras, settings
        self._build = lambda: build_model(
            "unet",
            num_classes=num_classes,
            size=settings.size,
            base_filters=settings.base_filters,
            depth=settings.depth,
        )
        self.model = self._build()
        self.optimizer = keras.optimizers.Adam(settings.learning_rate)
        self.optimizer.build(self.model.trainable_variables)
        self.step = make_train_step(self.model, self.optimizer, cross_entropy)
        self.forward = self.tf.function(lambda images: self.tf.nn.softmax(self.model(images, training=False)))
        self._initial: dict[int, list[np.ndarray]] = {}

    def _reset(self, seed: int) -> None:
        if seed not in self._initial:
            self.keras.utils.set_random_seed(seed)
            self._initial[seed] = self._build().get_weights()
        self.model.set_weights(self._initial[seed])
        for variable in self.optimizer.variables:
            if not variable.path.endswith("learning_rate"):
                variable.assign(np.zeros(variable.shape, variable.dtype))

    def fit(self, images: np.ndarray, masks: np.ndarray, seed: int) -> None:
        """``steps`` steps from the seed's initial weights; batches cycle through seeded shuffles."""
        self._reset(seed)
        rng = np.random.default_rng(seed)
        needed = self.settings.steps * self.settings.batch_size
        order = np.concatenate([rng.permutation(len(images)) for _ in range(-(-needed // len(images)))])
        for batch in order[:needed].reshape(self.settings.steps, self.settings.batch_size):
            self.step(self.tf.constant(images[batch]), self.tf.constant(masks[batch]))

    def probabilities(self, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
        """Softmax probabilities (N, S, S, C) as float32; the last batch is padded to the full size, so
        the forward pass is traced once whatever the pool's size."""
        parts = []
        for start in range(0, len(images), batch_size):
            chunk = images[start : start + batch_size]
            padded = np.concatenate(
                [chunk, np.zeros((batch_size - len(chunk), *chunk.shape[1:]), chunk.dtype)]
            )
            parts.append(self.forward(self.tf.constant(padded)).numpy()[: len(chunk)])
        return np.concatenate(parts)


def evaluate(probabilities: np.ndarray, masks: np.ndarray, class_names) -> dict:
    """Val mIoU and per-class IoU from one confusion matrix at the prepared size."""
    matrix = empty_matrix(len(class_names))
    for probability, mask in zip(probabilities, masks):
        accumulate(matrix, mask, probability.argmax(axis=-1))
    metrics = metrics_from_matrix(matrix, class_names)
    return {"miou": metrics["miou"], "per_class_iou": metrics["per_class_iou"]}


def choose(
    strategy: str,
    candidates: np.ndarray,
    count: int,
    rng: np.random.Generator,
    probabilities: np.ndarray,
    member: np.ndarray | None = None,
) -> tuple[np.ndarray, list[float] | None]:
    """The ``count`` candidates (pool positions) a strategy labels next, and the scores it ranked by.

    ``probabilities`` and ``member`` hold the candidates' probabilities, in ``candidates`` order.
    """
    if strategy == "random":
        return rng.choice(candidates, size=count, replace=False), None
    members = (probabilities, member) if strategy == "disagreement" else ()
    scores = [
        image_scores(probability, members=[part[index] for part in members])[strategy]
        for index, probability in enumerate(probabilities)
    ]
    order = np.argsort(-np.asarray(scores), kind="stable")
    return candidates[order[:count]], scores


def rarest_class(masks: np.ndarray, num_classes: int) -> tuple[int, np.ndarray]:
    """The non-background class in fewest images, and which images hold it."""
    present = np.stack([(masks == index).any(axis=(1, 2)) for index in range(num_classes)], axis=1)
    counts = np.where(present[:, 1:].sum(axis=0) > 0, present[:, 1:].sum(axis=0), len(masks) + 1)
    index = int(np.argmin(counts)) + 1
    return index, present[:, index]


def simulate(settings: Settings, data: Data, progress: Callable[[str], None] = logger.info) -> dict:
    """Every strategy's learning curve for every seed, with each round's picks and scores."""
    started = time.perf_counter()
    trainer = Trainer(settings, len(data.class_names))
    pool_size, count = len(data.pool_images), settings.per_round
    if count * (settings.rounds + 1) > pool_size:
        raise ValueError(f"{settings.rounds + 1} x {count} labels do not fit in a pool of {pool_size}")
    rare_index, rare_images = rarest_class(data.pool_masks, len(data.class_names))
    runs = {strategy: [] for strategy in STRATEGIES}

    def train_and_score(labelled: list[int], seed: int, committee: bool, last: bool):
        trainer.fit(data.pool_images[labelled], data.pool_masks[labelled], seed)
        point = evaluate(trainer.probabilities(data.val_images), data.val_masks, data.class_names)
        point.update(labelled=len(labelled), rare_images=int(rare_images[labelled].sum()))
        if last:
            return point, None, None
        candidates = np.setdiff1d(np.arange(pool_size), labelled)
        probabilities = trainer.probabilities(data.pool_images[candidates])
        member = None
        if committee:
            trainer.fit(data.pool_images[labelled], data.pool_masks[labelled], seed + MEMBER_SEED)
            member = trainer.probabilities(data.pool_images[candidates])
        return point, candidates, (probabilities, member)

    for seed in range(settings.seeds):
        initial = [
            int(value) for value in np.random.default_rng(seed).choice(pool_size, count, replace=False)
        ]
        first = train_and_score(initial, seed, committee=True, last=False)
        for strategy in STRATEGIES:
            rng = np.random.default_rng([seed, STRATEGIES.index(strategy)])
            labelled = list(initial)
            point, candidates, (probabilities, member) = first
            rounds = [{**point, "round": 0, "chosen": initial}]
            for round_number in range(1, settings.rounds + 1):
                chosen, scores = choose(strategy, candidates, count, rng, probabilities, member)
                labelled += [int(value) for value in chosen]
                point, next_candidates, outputs = train_and_score(
                    labelled, seed, strategy == "disagreement", round_number == settings.rounds
                )
                rounds.append(
                    {
                        **point,
                        "round": round_number,
                        "chosen": [int(value) for value in chosen],
                        "candidates": [int(value) for value in candidates],
                        "scores": scores,
                    }
                )
                candidates, (probabilities, member) = next_candidates, outputs or (None, None)
            runs[strategy].append(rounds)
            progress(
                f"seed {seed} {strategy}: "
                + " ".join(f"{row['labelled']}:{row['miou'] * 100:.1f}" for row in rounds)
                + f" ({time.perf_counter() - started:.0f} s)"
            )
    results = {
        "machine": machine_description(),
        "settings": dataclasses.asdict(settings),
        "dataset": data.description,
        "pool_images": pool_size,
        "val_images": len(data.val_images),
        "class_names": list(data.class_names),
        "rare_class": {"name": data.class_names[rare_index], "pool_images": int(rare_images.sum())},
        "runs": runs,
        "seconds": time.perf_counter() - started,
    }
    results["summary"] = summarise(runs)
    results["target"] = target(results["summary"])
    return results


def summarise(runs: dict) -> dict:
    """Per strategy and round: labels, mean/std/min/max of val mIoU and mean rare images labelled."""
    summary = {}
    for strategy, seeds in runs.items():
        rows = []
        for round_number in range(len(seeds[0])):
            values = np.array([rounds[round_number]["miou"] for rounds in seeds])
            rows.append(
                {
                    "labelled": seeds[0][round_number]["labelled"],
                    "mean": float(values.mean()),
                    "std": float(values.std()),
                    "low": float(values.min()),
                    "high": float(values.max()),
                    "rare_images": float(np.mean([rounds[round_number]["rare_images"] for rounds in seeds])),
                }
            )
        summary[strategy] = rows
    return summary


def labels_to_reach(labelled: list[float], curve: list[float], goal: float) -> float | None:
    """Labels at which a curve first reaches ``goal``, interpolating linearly between rounds."""
    for index, value in enumerate(curve):
        if value >= goal:
            if index == 0:
                return float(labelled[0])
            previous = curve[index - 1]
            fraction = (goal - previous) / (value - previous)
            return float(labelled[index - 1] + fraction * (labelled[index] - labelled[index - 1]))
    return None


def target(summary: dict) -> dict:
    """Whether the best uncertainty strategy reaches random's final mean mIoU with <= 70 % of its labels."""
    final = summary["random"][-1]
    needed = {}
    for strategy in UNCERTAINTY:
        rows = summary[strategy]
        needed[strategy] = labels_to_reach(
            [row["labelled"] for row in rows], [row["mean"] for row in rows], final["mean"]
        )
    reached = {strategy: value for strategy, value in needed.items() if value is not None}
    best = min(reached, key=reached.get) if reached else None
    share = reached[best] / final["labelled"] if best else None
    return {
        "random_final_miou": final["mean"],
        "random_final_std": final["std"],
        "random_labels": final["labelled"],
        "labels_needed": needed,
        "best": best,
        "share": share,
        "holds": share is not None and share <= TARGET_SHARE,
    }


def target_sentence(results: dict) -> str:
    goal = results["target"]
    head = (
        f"Random's final mean val mIoU is {goal['random_final_miou'] * 100:.1f} % "
        f"(std {goal['random_final_std'] * 100:.1f}) with {goal['random_labels']} labelled images. "
    )
    if goal["best"] is None:
        return head + (
            "No uncertainty strategy's mean curve reaches it within the same labels: "
            f"the {TARGET_SHARE:.0%} target does not hold."
        )
    verdict = "holds" if goal["holds"] else "does not hold"
    labels = goal["share"] * goal["random_labels"]
    sentence = head + (
        f"The best uncertainty strategy, {goal['best']}, reaches it with {labels:.1f} labels "
        f"({goal['share']:.0%} of random's): the {TARGET_SHARE:.0%} target {verdict}."
    )
    if labels <= results["summary"]["random"][0]["labelled"]:
        sentence += " (Random ends no higher than the shared random start: read the table, not the ratio.)"
    return sentence


def format_table(results: dict) -> str:
    settings, rare = results["settings"], results["rare_class"]
    lines = [
        f"Machine: {results['machine']}.",
        f"Dataset: {results['dataset']}; pool {results['pool_images']} images, "
        f"val {results['val_images']}; rarest class {rare['name']!r} in {rare['pool_images']} pool images.",
        f"UNet (base filters {settings['base_filters']}, depth {settings['depth']}), "
        f"{settings['steps']} Adam steps of {settings['batch_size']} (lr {settings['learning_rate']:g}, "
        f"no augmentation) per training; {settings['seeds']} seed(s), {settings['rounds']} rounds of "
        f"{settings['per_round']} images; {results['seconds']:.0f} s.",
        "",
        "Val mIoU % per round: mean ± std [min-max] over the seeds; (n): mean images of the rarest class "
        "labelled.",
        "",
        "| labelled | " + " | ".join(STRATEGIES) + " |",
        "|---:|" + "---:|" * len(STRATEGIES),
    ]
    summary = results["summary"]
    for index, first in enumerate(summary["random"]):
        cells = []
        for strategy in STRATEGIES:
            row = summary[strategy][index]
            spread = f"[{row['low'] * 100:.1f}-{row['high'] * 100:.1f}]"
            cells.append(
                f"{row['mean'] * 100:.1f} ± {row['std'] * 100:.1f} {spread} ({row['rare_images']:.1f})"
            )
        lines.append(f"| {first['labelled']} | " + " | ".join(cells) + " |")
    lines += ["", target_sentence(results)]
    return "\n".join(lines)


def draw(results: dict) -> np.ndarray:
    """The learning curves: mean val mIoU against labelled images, min-max band per strategy."""
    series = []
    for strategy in STRATEGIES:
        rows = results["summary"][strategy]
        series.append(
            Series(
                strategy,
                [row["labelled"] for row in rows],
                [row["mean"] * 100 for row in rows],
                [row["low"] * 100 for row in rows],
                [row["high"] * 100 for row in rows],
            )
        )
    settings = results["settings"]
    title = f"Active learning on {settings['dataset']} ({settings['seeds']} seed(s); band: min-max)"
    return draw_line_chart(series, title, "labelled images", "val mIoU %")


def run(settings: Settings, progress: Callable[[str], None] = logger.info) -> dict:
    """Write and prepare the data in a temporary folder, then simulate."""
    with tempfile.TemporaryDirectory(prefix="cocoseg-active-learning-") as folder:
        return simulate(settings, load_data(settings, Path(folder)), progress)


def main(arguments: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    defaults = Settings()
    parser.add_argument("--dataset", choices=("shapes", "demo"), default=defaults.dataset)
    integers = ("size", "seeds", "rounds", "per_round", "steps", "batch_size", "base_filters", "pool", "val")
    for field in integers:
        parser.add_argument(f"--{field.replace('_', '-')}", type=int, default=getattr(defaults, field))
    for field in ("learning_rate", "rare_share"):
        parser.add_argument(f"--{field.replace('_', '-')}", type=float, default=getattr(defaults, field))
    parser.add_argument("--plot", type=Path, help="save the learning curves here (PNG)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    options = vars(parser.parse_args(arguments))
    plot, json_path = options.pop("plot"), options.pop("json")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    results = run(Settings(**options))
    if json_path:
        json_path.write_text(json.dumps(results, indent=1, allow_nan=False))
    if plot:
        save_chart(draw(results), plot)
    sys.stdout.write(format_table(results) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
