"""Training runner: ``run(config, ...)`` trains a model on a prepared set into a run folder.

A custom loop (not ``model.fit``) so that ``should_stop`` is polled between batches,
a NaN loss is caught with its epoch and batch, and progress events carry images/s and
an ETA. Each epoch ends with validation (mIoU from one confusion matrix), a
``last.keras`` checkpoint with the optimizer state, ``best.keras`` when mIoU improved,
a history row and TensorBoard scalars. Resuming restarts from the last finished epoch
with the same per-epoch data seeds, so it reproduces uninterrupted training.
"""

from __future__ import annotations

import dataclasses
import errno
import logging
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from cocoseg.errors import ConfigError
from cocoseg.models.encoder_catalog import DEFAULT_ENCODER
from cocoseg.models.metrics import accumulate, empty_matrix, mean_iou, or_none, per_class_iou
from cocoseg.pipeline.core.devices import cpu_info
from cocoseg.pipeline.core.settings import get_settings
from cocoseg.pipeline.core.tf_runtime import tensorflow
from cocoseg.pipeline.core.workspace import Workspace, atomic_write_json, now_iso
from cocoseg.pipeline.jobs.registry import (
    Heartbeat,
    RunError,
    RunFolder,
    get_run,
    process_identity,
    take_queued,
)
from cocoseg.pipeline.prepare.sampling import SamplingConfig
from cocoseg.pipeline.prepare.sets import PreparedSet
from cocoseg.pipeline.training.checks import check, create
from cocoseg.pipeline.training.cluster import (
    Cluster,
    fingerprint,
    formed,
    watch_formation,
)
from cocoseg.pipeline.training.config import TrainConfig
from cocoseg.pipeline.training.input import (
    InputConfig,
    evaluation_dataset,
    expected_epoch_images,
    training_dataset,
)
from cocoseg.pipeline.training.lineage import CLASSIFIER_LAYER
from cocoseg.pipeline.training.precision import Precision, choose_precision
from cocoseg.pipeline.training.weights import throttled, weights_file

logger = logging.getLogger(__name__)

EVENT_EVERY_BATCHES = 5

ProgressCallback = Callable[[dict], None]
StopCallback = Callable[[], bool]


@dataclasses.dataclass(frozen=True)
class Run:
    """The outcome of ``run``/``resume``: the folder and how it ended."""

    folder: RunFolder
    status: str
    best_miou: float | None
    epochs_done: int
    message: str = ""


def choose_strategy(cluster: Cluster | None = None, run_folder: Path | None = None):
    """The distribution strategy: MultiWorkerMirroredStrategy for a ``cluster`` (``training.cluster``);
    MirroredStrategy over several GPUs, or over the logical CPUs ``COCOSEG_CPU_REPLICAS`` made; the
    default strategy otherwise.

    TensorFlow waits without end for workers that never join: after ``cluster_connect_seconds`` a watch
    process records why in ``run_folder`` (the chief's) and ends this one.
    """
    tf = tensorflow()
    if cluster is not None:
        settings = get_settings()
        os.environ["TF_CONFIG"] = cluster.tf_config()
        options = tf.distribute.experimental.CommunicationOptions(
            timeout_seconds=settings.cluster_step_seconds
        )
        message = (
            f"the cluster did not form within {settings.cluster_connect_seconds:.0f} s: not every worker of "
            f"{', '.join(cluster.workers)} started (worker {cluster.index} waited); start each with the "
            "same command and its own --worker-index"
        )
        watch = watch_formation(settings.cluster_connect_seconds, message, run_folder)
        try:
            return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
        finally:
            formed(watch)
    gpus = tf.config.list_logical_devices("GPU")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy()
    cpus = tf.config.list_logical_devices("CPU")
    if len(cpus) > 1 and not gpus:
        return tf.distribute.MirroredStrategy([device.name for device in cpus])
    return tf.distribute.get_strategy()


def device_name(cluster: Cluster | None = None, replicas: int = 1) -> str:
    """What trains: ``CPU``, ``2 GPU``, ``CPU x 2 replicas`` (logical CPUs), ``2 workers x CPU``."""
    tf = tensorflow()
    gpus = tf.config.list_logical_devices("GPU")
    local = f"{len(gpus)} GPU" if gpus else "CPU"
    if cluster:
        return f"{len(cluster.workers)} workers x {local}"
    return f"{local} x {replicas} replicas" if replicas > 1 and not gpus else local


def gpu_capabilities() -> list:
    """Each visible GPU's compute capability as TensorFlow reports it (``(8, 0)``; None if unknown)."""
    tf = tensorflow()
    return [
        tf.config.experimental.get_device_details(gpu).get("compute_capability")
        for gpu in tf.config.list_physical_devices("GPU")
    ]


def check_device(config: TrainConfig) -> Precision:
    """The check ``checks.check`` leaves to the job: the precision on this device (``auto`` resolved).

    Raises:
        ConfigError: ``precision``: float16 without a GPU, or bfloat16 on a CPU without it.
    """
    cpu = cpu_info()
    return choose_precision(config.precision, gpu_capabilities(), cpu.bfloat16, cpu.model)


def record_precision(folder: RunFolder, config: TrainConfig, precision: Precision) -> TrainConfig:
    """Write the policy the run uses (and why) into its config, once; the config to train with.

    A resumed run keeps its recorded policy: its checkpoint's layers were saved with it.
    """
    record = folder.config()
    if "precision_reason" not in record:
        record = {
            **record,
            "precision": precision.policy,
            "precision_requested": config.precision,
            "precision_reason": precision.reason,
        }
        record.pop("mixed_precision", None)
        atomic_write_json(folder.folder / "config.json", record)
        folder.append_event({"type": "precision", "policy": precision.policy, "reason": precision.reason})
    return dataclasses.replace(config, precision=precision.policy)


def _optimizer(config: TrainConfig, total_steps: int):
    import keras

    if config.schedule == "cosine":
        rate = keras.optimizers.schedules.CosineDecay(config.learning_rate, max(total_steps, 1))
    elif config.schedule == "poly":
        rate = keras.optimizers.schedules.PolynomialDecay(
            config.learning_rate, max(total_steps, 1), end_learning_rate=0.0, power=0.9
        )
    else:
        rate = config.learning_rate
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(rate, momentum=0.9)
    if config.optimizer == "adamw":
        return keras.optimizers.AdamW(rate, weight_decay=1e-4)
    return keras.optimizers.Adam(rate)


def _registry():
    """cocoseg.models.registry, imported after TensorFlow's quiet start (models import keras at load)."""
    tensorflow()
    from cocoseg.models import registry

    return registry


def _loss_function(name: str):
    tensorflow()
    from cocoseg.models.losses import LOSS_FUNCTIONS

    return LOSS_FUNCTIONS[name]


def _save_checkpoint(model, target, frozen_encoder: bool = False) -> None:
    """Write next to ``target`` and rename: a failed write (full disk) keeps the old checkpoint.

    A checkpoint always has every layer trainable: loading builds the optimizer on the
    trainable variables, and one built while the encoder was frozen could never train it
    again. The freeze is the run's schedule (its config), re-applied by epoch on resume.
    """
    from cocoseg.models.transfer import set_encoder_trainable

    temporary = target.with_name(f".{target.stem}.tmp.keras")
    try:
        if frozen_encoder:
            set_encoder_trainable(model, True)
        try:
            model.save(temporary)
        finally:
            if frozen_encoder:
                set_encoder_trainable(model, False)
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def make_train_step(model, optimizer, loss_function, strategy=None):
    """A compiled ``step(images, masks) -> loss``: forward, loss, backward, optimizer update.

    Under a multi-replica ``strategy`` each replica's loss is scaled by 1/replicas and the
    returned loss is their mean. Benchmarks and tests call this same step.
    """
    tf = tensorflow()
    strategy = strategy or tf.distribute.get_strategy()
    replicas = strategy.num_replicas_in_sync

    def step(images, masks):
        with tf.GradientTape() as tape:
            logits = model(images, training=True)
            loss = loss_function(masks, logits)
            scaled = (
                optimizer.scale_loss(loss / replicas) if hasattr(optimizer, "scale_loss") else loss / replicas
            )
        gradients = tape.gradient(scaled, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        return loss

    @tf.function
    def distributed(images, masks):
        losses = strategy.run(step, args=(images, masks))
        return strategy.reduce(tf.distribute.ReduceOp.MEAN, losses, axis=None)

    return distributed


class _Trainer:
    """One training session over a run folder (fresh or resumed)."""

    def __init__(
        self,
        workspace: Workspace,
        run: RunFolder,
        config: TrainConfig,
        prepared: PreparedSet,
        on_progress,
        should_stop,
        cluster: Cluster | None = None,
    ) -> None:
        config = config.resolved(prepared.manifest["config"]["sampling"])  # a run folder's is already
        self.workspace, self.run, self.config, self.prepared = workspace, run, config, prepared
        self.cluster = cluster
        self._owns_run = cluster is None or cluster.is_chief
        self.on_progress = on_progress or (lambda event: None)
        asked = should_stop or (lambda: False)
        self.should_stop = lambda: (
            run.cancel_requested() or asked()
        )  # the registry's cancel works for every caller
        self.tf = tensorflow()
        self.num_classes = len(prepared.manifest["label_map"]["classes"])
        self.loss_function = _loss_function(config.loss)
        self.sampling = SamplingConfig(config.sampling, config.threshold)
        expected_epoch = expected_epoch_images(prepared, "train", self.sampling)
        self.steps_per_epoch = max(1, math.ceil(expected_epoch / config.batch_size))

    def _input_config(self) -> InputConfig:
        return InputConfig(
            batch_size=self.config.batch_size,
            augment=self.config.augment_config(),
            sampling=self.sampling,
            seed=self.config.seed,
        )

    def build(self, resume: bool):
        import keras

        build_model = _registry().build_model
        # The layers take the global policy when they are built or loaded (a checkpoint's layers keep
        # the policy they were saved with), so it is set only while building: an export or a second
        # run in this process starts from float32 again.
        previous = keras.mixed_precision.global_policy()
        keras.mixed_precision.set_global_policy(self.config.precision)
        try:
            self._build(resume, build_model)
        finally:
            keras.mixed_precision.set_global_policy(previous)

    def _build(self, resume: bool, build_model) -> None:
        import keras

        keras.utils.set_random_seed(self.config.seed)
        self.strategy = choose_strategy(self.cluster, self.run.folder if self._owns_run else None)
        with self.strategy.scope():
            if resume:
                self.model = keras.models.load_model(self.run.last_checkpoint, compile=True)
                if self.model.output.shape[-1] != self.num_classes:
                    raise ConfigError(
                        "prepared",
                        f"its label map has {self.num_classes} classes but the checkpoint predicts "
                        f"{self.model.output.shape[-1]}",
                    )
            else:
                size = self.prepared.manifest["config"]["size"]
                self.model = build_model(self.config.model, self.num_classes, size, **self._model_options())
                # compile only attaches the optimizer, so checkpoints carry its state. Under
                # mixed_float16 Keras 3's compile wraps it in a LossScaleOptimizer (dynamic loss
                # scaling), whose scale_loss/apply_gradients the train step calls; bfloat16 has
                # float32's exponent range and needs no scaling.
                self.model.compile(
                    optimizer=_optimizer(self.config, self.steps_per_epoch * self.config.epochs)
                )
                parent = self.run.config().get("parent")
                if parent:
                    self._start_from(parent)
            self.optimizer = self.model.optimizer
            if not self.optimizer.built:  # every variable known, so freezing the encoder later is allowed
                self.optimizer.build(self.model.trainable_variables)
        self.encoder_frozen = None  # unknown: a resumed checkpoint may have been saved while frozen
        self.train_step = make_train_step(self.model, self.optimizer, self.loss_function, self.strategy)
        if self.cluster is not None:
            self._agree = _agreement(self.strategy)
            self._check_same_settings()

    def _check_same_settings(self) -> None:
        """Workers started with different settings would fail later with a shape error, or hang."""
        digest = fingerprint({**self.config.to_dict(), "prepared_folder": self.prepared.name})
        lowest, highest = self._agree(digest)
        if lowest != highest:
            raise ConfigError(
                "workers",
                "the workers were started with different settings; run the same command on each, "
                "only --worker-index differs",
            )

    def _stop_agreed(self) -> bool:
        """The chief's cancel (or any worker's Ctrl+C) stops every worker at the same step, or the others
        would wait in the next all-reduce."""
        wanted = self.should_stop()
        if self.cluster is None:
            return wanted
        return bool(self._agree(int(wanted))[1])

    def _model_options(self) -> dict:
        """The builder's options: ImageNet weights become the workspace's file (downloaded once,
        the progress in the run's status line); a fine-tuned run copies its encoder instead."""
        options = dict(self.config.model_options)
        if options.get("encoder_weights") != "imagenet":
            return options
        if self.run.config().get("parent"):
            options["encoder_weights"] = None  # every layer comes from the parent
            return options
        encoder = options.get("encoder", DEFAULT_ENCODER)
        report = throttled(lambda line: self.run.set_status("running", message=line), encoder)
        try:
            found = weights_file(self.workspace, encoder, report)
            options["encoder_weights"] = str(found)
            self.run.append_event({"type": "encoder_weights", "encoder": encoder, "file": str(found)})
        except ConfigError as error:
            if not options.get("fallback_to_random"):
                raise
            logger.warning("%s; starting from random encoder weights as requested", error.message)
            self.run.append_event({"type": "warning", "message": f"random encoder weights: {error.message}"})
            options["encoder_weights"] = None
        return options

    def _start_from(self, parent: dict) -> None:
        """Copy the parent run's best weights (all layers; the classifier only for the same label map)."""
        import keras

        from cocoseg.models.transfer import copy_weights

        checkpoint = RunFolder(self.run.folder.parent / parent["run"]).best_checkpoint
        if not checkpoint.is_file():
            raise ConfigError(
                "init_from", f"run {parent['run']}'s checkpoint is gone (deleted after this run was queued)"
            )
        source = keras.models.load_model(checkpoint, compile=False)
        skipped = () if parent["copy_classifier"] else (CLASSIFIER_LAYER,)
        copied = copy_weights(source, self.model, skip=skipped)
        self.run.append_event(
            {
                "type": "initialised",
                "parent": parent["run"],
                "copied_layers": len(copied),
                "new_layers": list(skipped),
            }
        )

    def _freeze_encoder(self, epoch: int) -> None:
        """Hold the encoder for the configured first epochs; a change re-traces the train step."""
        from cocoseg.models.transfer import set_encoder_trainable

        frozen = epoch < self.config.freeze_encoder_epochs
        if frozen == self.encoder_frozen:
            return
        set_encoder_trainable(self.model, not frozen)
        self.encoder_frozen = frozen
        self.train_step = make_train_step(self.model, self.optimizer, self.loss_function, self.strategy)

    def evaluate(self) -> tuple[float, float, list[float | None]]:
        """Validation loss, mIoU and per-class IoU over the whole val split.

        The same confusion matrix and rule as evaluation (``cocoseg.models.metrics``), except
        that a split without one labelled pixel scores 0.0, not None: the history stores a
        number per epoch, and such an epoch measured nothing, so it never beats a real score.
        """
        matrix = empty_matrix(self.num_classes)
        losses, weights = [], []
        for images, masks in evaluation_dataset(self.prepared, "val", self.config.batch_size):
            logits = self.model(images, training=False)
            losses.append(float(self.loss_function(masks, logits)))
            weights.append(int(images.shape[0]))
            predictions = self.tf.argmax(logits, axis=-1, output_type=self.tf.int32)
            accumulate(matrix, np.asarray(masks), np.asarray(predictions))
        miou = mean_iou(matrix)
        return (
            float(np.average(losses, weights=weights)),
            0.0 if miou is None else miou,
            or_none(per_class_iou(matrix)),
        )

    def train(self, start_epoch: int, best_miou: float | None) -> Run:
        run, config = self.run, self.config
        writer = self.tf.summary.create_file_writer(str(run.logs))
        device = device_name(self.cluster, self.strategy.num_replicas_in_sync)
        run.set_status("running", device=device, message="", epochs=config.epochs)
        for epoch in range(start_epoch, config.epochs):
            self._freeze_encoder(epoch)
            started = time.perf_counter()
            seen, loss_sum, batches = 0, 0.0, 0
            dataset = self.strategy.experimental_distribute_dataset(
                _sharded(training_dataset(self.prepared, "train", self._input_config(), epoch), self.cluster)
            )
            for batch, (images, masks) in enumerate(dataset):
                if self._stop_agreed():
                    kept = (
                        f"the last checkpoint is from epoch {epoch}"
                        if epoch
                        else "no epoch had finished, so there is no checkpoint"
                    )
                    run.set_status("cancelled", message=f"cancelled during epoch {epoch + 1}; {kept}")
                    return Run(run, "cancelled", best_miou, epoch, "cancelled")
                loss = float(self.train_step(images, masks))
                if not math.isfinite(loss):
                    message = f"loss became NaN at epoch {epoch + 1} batch {batch + 1}"
                    run.set_status("failed", message=message)
                    run.append_event(
                        {"type": "failed", "epoch": epoch + 1, "batch": batch + 1, "message": message}
                    )
                    return Run(run, "failed", best_miou, epoch, message)
                count = (
                    int(self.tf.shape(masks.values[0] if hasattr(masks, "values") else masks)[0])
                    * self.strategy.num_replicas_in_sync
                )
                seen, loss_sum, batches = seen + count, loss_sum + loss, batches + 1
                if batches % EVENT_EVERY_BATCHES == 0 or batches == 1:
                    rate = seen / max(time.perf_counter() - started, 1e-9)
                    remaining = (self.steps_per_epoch - batches) * config.batch_size + (
                        config.epochs - epoch - 1
                    ) * self.steps_per_epoch * config.batch_size
                    event = {
                        "type": "batch",
                        "epoch": epoch + 1,
                        "epochs": config.epochs,
                        "batch": batches,
                        "batches": self.steps_per_epoch,
                        "loss": loss_sum / batches,
                        "images_per_second": rate,
                        "eta_seconds": max(remaining, 0) / max(rate, 1e-9),
                    }
                    run.append_event(event)
                    run.heartbeat(progress=event)
                    self.on_progress(event)
            best_miou = self._end_epoch(
                epoch, loss_sum / max(batches, 1), seen, time.perf_counter() - started, best_miou, writer
            )
        run.set_status(
            "finished", message=f"best val mIoU {best_miou * 100:.2f} %" if best_miou is not None else ""
        )
        return Run(run, "finished", best_miou, config.epochs)

    def _end_epoch(self, epoch: int, loss: float, seen: int, seconds: float, best_miou, writer) -> float:
        val_loss, val_miou, per_class = self.evaluate()
        improved = best_miou is None or val_miou > best_miou
        best_miou = val_miou if improved else best_miou
        _save_checkpoint(self.model, self.run.last_checkpoint, bool(self.encoder_frozen))
        if improved:
            _save_checkpoint(self.model, self.run.best_checkpoint, bool(self.encoder_frozen))
        self.run.save_state(epoch + 1, best_miou)
        learning_rate = float(self.optimizer.learning_rate)
        row = {
            "epoch": epoch + 1,
            "loss": loss,
            "val_loss": val_loss,
            "val_miou": val_miou,
            "learning_rate": learning_rate,
            "seconds": seconds,
            "images_per_second": seen / max(seconds, 1e-9),
        }
        self.run.append_history(row)
        event = {
            "type": "epoch",
            **row,
            "epochs": self.config.epochs,
            "best_miou": best_miou,
            "per_class_iou": per_class,
        }
        self.run.append_event(event)
        self.run.heartbeat(progress=event)
        with writer.as_default(step=epoch + 1):
            for key in ("loss", "val_loss", "val_miou", "learning_rate"):
                self.tf.summary.scalar(key, row[key])
        self.on_progress(event)
        return best_miou


def _agreement(strategy):
    """A compiled ``agree(value) -> (lowest, highest)`` over every replica of every worker."""
    tf = tensorflow()

    @tf.function
    def agree(value):
        everyone = strategy.gather(strategy.run(lambda: tf.reshape(value, [1])), axis=0)
        return tf.reduce_min(everyone), tf.reduce_max(everyone)

    return lambda value: tuple(int(item) for item in agree(tf.constant(value, tf.int32)))


def _sharded(dataset, cluster: Cluster | None):
    """Across machines each worker keeps its share of every global batch (by element, not by file:
    the prepared shards need not divide among the workers), so every worker runs the same steps."""
    if cluster is None:
        return dataset
    tf = tensorflow()
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


CLUSTER_ERRORS = ("UnavailableError", "DeadlineExceededError", "AbortedError", "CancelledError")


def _cluster_reason(error: BaseException) -> str:
    """TensorFlow's many-line collective error, in a few words."""
    said = str(error)
    if "unhealthy" in said or "crashed" in said:
        return "it stopped sending heartbeats"
    if any(
        phrase in said
        for phrase in ("Connection reset", "Socket closed", "failed to connect", "Connection refused")
    ):
        return "the connection to it was lost"
    if type(error).__name__ == "DeadlineExceededError":
        return f"one step took over {get_settings().cluster_step_seconds:.0f} s"
    return type(error).__name__


def _failure_message(error: BaseException, run: RunFolder) -> str:
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        epoch = run.state().get("epoch", 0)
        kept = f"the checkpoint of epoch {epoch} is kept" if epoch else "no checkpoint was saved yet"
        return f"the disk is full (No space left on device); {kept}. Free some space, then resume"
    if type(error).__name__ in CLUSTER_ERRORS:
        epoch = run.state().get("epoch", 0)
        kept = (
            f"the checkpoint of epoch {epoch} is kept (cocoseg runs resume continues on one machine)"
            if epoch
            else "no epoch had finished"
        )
        return f"a worker of the cluster stopped answering ({_cluster_reason(error)}); {kept}"
    return f"{type(error).__name__}: {str(error).splitlines()[0][:300] if str(error) else ''}"


def _execute(trainer: _Trainer, resume: bool, start_epoch: int, best_miou) -> Run:
    try:
        trainer.run.set_status(
            "running",
            message="starting: loading TensorFlow and building the model",
            started=now_iso(),
            **process_identity(),
        )
        with Heartbeat(trainer.run):
            trainer.build(resume)
            return trainer.train(start_epoch, best_miou)
    except BaseException as error:
        try:
            if isinstance(error, KeyboardInterrupt):
                trainer.run.set_status("cancelled", message="interrupted from the keyboard")
            else:
                trainer.run.set_status("failed", message=_failure_message(error, trainer.run))
                trainer.run.append_event({"type": "failed", "message": _failure_message(error, trainer.run)})
        except OSError:  # the disk may be too full even for status.json: reconcile marks it interrupted
            logger.exception("could not record the failure of %s", trainer.run.name)
        raise


def train_queued(
    workspace: Workspace,
    name: str,
    on_progress: ProgressCallback | None = None,
    should_stop: StopCallback | None = None,
    cluster: Cluster | None = None,
) -> Run:
    """Train a run that ``create`` queued; the one writer of its folder (the chief, in a ``cluster``).

    Raises:
        RunError: unknown run, already started (a double click, a second tab), or being
            trained by another process.
    """
    folder = get_run(workspace, name)
    config = TrainConfig.from_dict(folder.config())
    with take_queued(
        workspace, folder, f"run-{folder.name}", f"run {name}", "being trained by another process"
    ) as go_on:
        if not go_on:
            return Run(folder, "cancelled", None, 0, "cancelled")
        # taken: say by whom at once, so that reconcile and the job managers see this process during start-up
        folder.set_status("queued", message="starting", **process_identity())
        try:
            prepared = check(workspace, config)
            config = record_precision(folder, config, check_device(config))
            trainer = _Trainer(workspace, folder, config, prepared, on_progress, should_stop, cluster)
        except Exception as error:  # recorded, or the run would stay "queued" (no pid) for ever
            message = str(error) if isinstance(error, ConfigError) else _failure_message(error, folder)
            folder.set_status("failed", message=message)
            folder.append_event({"type": "failed", "message": message})
            raise
        return _execute(trainer, False, 0, None)


def run(
    workspace: Workspace,
    config: TrainConfig,
    on_progress: ProgressCallback | None = None,
    should_stop: StopCallback | None = None,
    cluster: Cluster | None = None,
) -> Run:
    """Train ``config`` in a new run folder (``create`` then ``train_queued``).

    In a ``cluster`` the chief (worker 0) does this, and its run records the workers; every other
    worker trains the same steps into a temporary folder (``train_as_worker``).

    Raises:
        ConfigError: before any folder is created, for settings that cannot work.
    """
    check(workspace, config)
    check_device(config)  # before any folder exists, as every other setting
    if cluster is not None and not cluster.is_chief:
        return train_as_worker(workspace, config, cluster, on_progress, should_stop)
    folder = create(workspace, config)
    if cluster is not None:
        atomic_write_json(folder.folder / "config.json", {**folder.config(), "cluster": cluster.to_dict()})
    return train_queued(workspace, folder.name, on_progress, should_stop, cluster)


def train_as_worker(
    workspace: Workspace,
    config: TrainConfig,
    cluster: Cluster,
    on_progress: ProgressCallback | None = None,
    should_stop: StopCallback | None = None,
) -> Run:
    """A worker other than the chief: the same training, written to a temporary run folder that is
    removed at the end (the chief's run folder is the run). Waits for the chief's port first."""
    from cocoseg.pipeline.jobs.registry import create_run
    from cocoseg.pipeline.training.cluster import wait_for_chief

    wait_for_chief(cluster, get_settings().cluster_connect_seconds)
    prepared = check(workspace, config)
    scratch = Path(tempfile.mkdtemp(prefix=f"cocoseg-worker{cluster.index}-"))
    try:
        record = {
            **config.resolved(prepared.manifest["config"]["sampling"]).to_dict(),
            "prepared_folder": prepared.name,
        }
        folder = create_run(workspace, record, config.model, parent=scratch)
        config = record_precision(folder, config, check_device(config))
        trainer = _Trainer(workspace, folder, config, prepared, on_progress, should_stop, cluster)
        outcome = _execute(trainer, False, 0, None)
        return dataclasses.replace(
            outcome, message=outcome.message or f"worker {cluster.index}: its files were temporary"
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def resume(
    workspace: Workspace,
    name: str,
    epochs: int | None = None,
    on_progress: ProgressCallback | None = None,
    should_stop: StopCallback | None = None,
) -> Run:
    """Continue a run from its last finished epoch (optionally to a new total of ``epochs``).

    Raises:
        RunError: unknown run, no checkpoint yet, or it is being trained right now.
    """
    import filelock

    folder = get_run(workspace, name)
    config = TrainConfig.from_dict(folder.config())
    if epochs is not None:
        config = dataclasses.replace(config, epochs=epochs)
    state = folder.state()
    if not folder.last_checkpoint.is_file():
        raise RunError(f"run {name} has no finished epoch to resume from; start a new run")
    if state["epoch"] >= config.epochs:
        raise RunError(
            f"run {name} already has {state['epoch']} epochs; pass a larger --epochs to train further"
        )
    prepared = check(workspace, config)
    check_device(config)
    try:
        with workspace.lock(f"run-{folder.name}", timeout=0):
            folder.clear_cancel()
            atomic_write_json(folder.folder / "config.json", {**folder.config(), "epochs": config.epochs})
            return _execute(
                _Trainer(workspace, folder, config, prepared, on_progress, should_stop),
                True,
                state["epoch"],
                state["best_miou"],
            )
    except filelock.Timeout:
        raise RunError(f"run {name} is being trained by another process") from None
