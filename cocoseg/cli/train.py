"""``cocoseg train`` and ``cocoseg runs list|show|resume|delete``."""

from __future__ import annotations

import json
import signal
import sys

from tqdm import tqdm

from cocoseg.cli.arguments import add_augmentation_argument, name_value_pairs
from cocoseg.cli.output import write
from cocoseg.pipeline.core import ConfigError, Settings, Workspace
from cocoseg.pipeline.jobs import RunFolder, cancel, delete_run, get_run, list_runs, observe, summarise_run
from cocoseg.pipeline.prepare import SAMPLING_METHODS
from cocoseg.pipeline.training import (
    CATALOG,
    ENCODERS,
    LOSS_NAMES,
    OPTIMIZERS,
    PRECISIONS,
    RANDOM_WEIGHTS,
    SCHEDULES,
    TrainConfig,
    describe_strengths,
    find_parent,
    plan_round,
)
from cocoseg.pipeline.training.cluster import cluster_from_environment, parse_cluster
from cocoseg.pipeline.training.loop import resume, run


class _LiveBar:
    """A progress bar per epoch fed by the runner's events, plus graceful Ctrl-C."""

    def __init__(self) -> None:
        self.bar = None
        self.bar_epoch = None
        self.stop_requested = False
        self.last_miou = None

    def __call__(self, event: dict) -> None:
        if event["type"] == "batch":
            if self.bar is None or self.bar_epoch != event["epoch"]:
                self.close()
                self.bar_epoch = event["epoch"]
                self.bar = tqdm(
                    total=event["batches"],
                    desc=f"epoch {event['epoch']}/{event['epochs']}",
                    unit="batch",
                    disable=None,
                    file=sys.stderr,
                    leave=False,
                )
            self.bar.n = min(event["batch"], self.bar.total)
            self.bar.set_postfix(
                loss=f"{event['loss']:.4f}",
                miou="-" if self.last_miou is None else f"{self.last_miou:.3f}",
                eta=f"{event['eta_seconds'] / 60:.1f}min",
                refresh=True,
            )
        elif event["type"] == "epoch":
            self.last_miou = event["val_miou"]
            self.close()
            write(
                f"epoch {int(event['epoch'])}/{event['epochs']}: loss {event['loss']:.4f}, "
                f"val loss {event['val_loss']:.4f}, "
                f"val mIoU {event['val_miou']:.4f} (best {event['best_miou']:.4f}), "
                f"{event['images_per_second']:.1f} images/s"
            )

    def should_stop(self) -> bool:
        return self.stop_requested

    def request_stop(self, _signal, _frame) -> None:
        if self.stop_requested:
            raise KeyboardInterrupt
        self.stop_requested = True
        sys.stderr.write("\nstopping after this batch (Ctrl-C again to abort at once)\n")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _train_with_bar(work) -> int:
    bar = _LiveBar()
    previous = signal.signal(signal.SIGINT, bar.request_stop)
    try:
        outcome = work(bar, bar.should_stop)
    finally:
        signal.signal(signal.SIGINT, previous)
        bar.close()
    write(
        f"run {outcome.folder.name}: {outcome.status} after {outcome.epochs_done} epochs"
        + (f", best val mIoU {outcome.best_miou:.4f}" if outcome.best_miou is not None else "")
        + (f" ({outcome.message})" if outcome.message and outcome.status != "finished" else "")
    )
    write(f"  folder: {outcome.folder.folder}")
    return 0 if outcome.status in ("finished", "cancelled") else 1


def command_train(arguments, settings: Settings, workspace: Workspace) -> int:
    model, options = arguments.model or "unet", name_value_pairs(arguments.option, "model_options")
    if arguments.encoder:
        options["encoder"] = arguments.encoder
    if arguments.encoder_weights:
        options["encoder_weights"] = None if arguments.encoder_weights == RANDOM_WEIGHTS else "imagenet"
    if arguments.init_from and arguments.model is None and not options:
        parent = find_parent(workspace, arguments.init_from)  # a fine-tuned run keeps its architecture
        model, options = parent.model, parent.model_options
    config = TrainConfig(
        prepared=arguments.prepared,
        model=model,
        model_options=options,
        epochs=arguments.epochs,
        batch_size=arguments.batch_size,
        learning_rate=arguments.lr,
        optimizer=arguments.optimizer,
        schedule=arguments.schedule,
        loss=arguments.loss,
        sampling=arguments.sampling,
        threshold=arguments.threshold,
        augment=not arguments.no_augment,
        augmentation=name_value_pairs(arguments.augmentation, "augmentation"),
        seed=arguments.seed,
        precision="mixed_float16" if arguments.mixed_precision else arguments.precision,
        init_from=arguments.init_from,
        freeze_encoder_epochs=arguments.freeze_encoder_epochs,
    )
    cluster = parse_cluster(arguments.workers, arguments.worker_index) or cluster_from_environment()
    return _train_with_bar(lambda progress, stop: run(workspace, config, progress, stop, cluster))


def command_finetune(arguments, settings: Settings, workspace: Workspace) -> int:
    """One round of the correction loop from the command line (what Annotate's button does)."""
    from cocoseg.pipeline.training.correction_job import run_round

    planned = plan_round(workspace, arguments.model, arguments.dataset, arguments.epochs)
    reused = " (unchanged since the last round: reused)" if planned.reuse else ""
    sys.stderr.write(
        f"round {planned.number}: {planned.corrections} corrected images of {planned.dataset} -> "
        f"{planned.overlay}{reused}; fine-tuning {planned.parent} for {planned.train['epochs']} epochs\n"
    )
    result = run_round(
        workspace,
        planned,
        settings.max_annotation_bytes,
        lambda event: sys.stderr.write(f"  {event['stage']}: {event['message']}\n"),
    )
    write(
        f"fine-tuned {result['child']} from {result['parent']} on {result['overlay']} (run {result['run']})"
    )
    write(
        f"  val mIoU on {result['evaluated_on']}: {result['child_miou'] * 100:.2f} % "
        f"(parent {result['parent_miou'] * 100:.2f} %)"
    )
    return 0


def command_runs_list(arguments, settings: Settings, workspace: Workspace) -> int:
    runs = list_runs(workspace)
    if not runs:
        write("no runs yet: cocoseg train PREPARED --model unet")
    for summary in runs:
        best = f"{summary.best_miou:.4f}" if summary.best_miou is not None else "-"
        state = observe(RunFolder(summary.folder)).state  # stalled shows here too
        write(
            f"{summary.name:<40} {state:<11} {summary.epochs_done:>3}/{summary.epochs:<3} "
            f"best mIoU {best:<7} {summary.device}" + (f"  from {summary.parent}" if summary.parent else "")
        )
    return 0


def command_runs_show(arguments, settings: Settings, workspace: Workspace) -> int:
    folder = get_run(workspace, arguments.name)
    summary = summarise_run(folder)
    write(f"{summary.name}: {summary.status}{' - ' + summary.message if summary.message else ''}")
    write(
        f"  model {summary.architecture}, epochs {summary.epochs_done}/{summary.epochs}, "
        f"device {summary.device or '-'}, folder {folder.folder}"
    )
    config = folder.config()
    if config.get("precision_reason"):
        write(f"  precision {config['precision']} ({config['precision_reason']})")
    try:
        applied = TrainConfig.from_dict(config).augment_config()
        write(f"  augmentation {describe_strengths(applied)}")
    except (ConfigError, TypeError):  # a hand-edited config: its JSON below says what is there
        pass
    write(f"  config: {json.dumps(folder.config())}")
    for row in folder.history():
        write(
            f"  epoch {int(row['epoch']):>3}: loss {row['loss']:.4f}  val loss {row['val_loss']:.4f}  "
            f"val mIoU {row['val_miou']:.4f}  "
            f"lr {row['learning_rate']:.2e}  {row['images_per_second']:.1f} images/s"
        )
    return 0


def command_runs_resume(arguments, settings: Settings, workspace: Workspace) -> int:
    return _train_with_bar(
        lambda progress, stop: resume(workspace, arguments.name, arguments.epochs, progress, stop)
    )


def command_runs_cancel(arguments, settings: Settings, workspace: Workspace) -> int:
    """Cancel through the registry, so it works for a run started anywhere (browser, worker, shell)."""
    write(cancel(get_run(workspace, arguments.name), "cli"))
    return 0


def command_runs_delete(arguments, settings: Settings, workspace: Workspace) -> int:
    delete_run(workspace, arguments.name)
    write(f"deleted run {arguments.name}")
    return 0


def add_train_commands(commands) -> None:
    """Register ``train`` and ``runs ...`` on the top-level subparsers."""
    train = commands.add_parser("train", help="train a model on a prepared set (background-safe run folder)")
    train.add_argument("prepared", help="prepared set name (cocoseg prepare list)")
    train.add_argument(
        "--model",
        default=None,
        help=f"{', '.join(CATALOG)} (default unet); with --init-from, the parent's",
    )
    train.add_argument(
        "--encoder", choices=tuple(ENCODERS), help="pretrained_unet / deeplabv3_plus: the backbone"
    )
    train.add_argument(
        "--encoder-weights",
        choices=("imagenet", RANDOM_WEIGHTS),
        help="pretrained_unet / deeplabv3_plus: ImageNet (downloaded once, or `cocoseg weights import`) "
        "or random (default)",
    )
    train.add_argument(
        "--option", action="append", help="architecture option NAME=VALUE (repeatable), e.g. base_filters=16"
    )
    train.add_argument("--epochs", type=int, default=20)
    train.add_argument("--batch-size", type=int, default=8)
    train.add_argument("--lr", type=float, default=1e-3, help="learning rate (default 1e-3)")
    train.add_argument("--optimizer", choices=OPTIMIZERS, default="adam")
    train.add_argument("--schedule", choices=SCHEDULES, default="cosine")
    train.add_argument("--loss", choices=LOSS_NAMES, default="cross_entropy")
    train.add_argument(
        "--sampling",
        choices=SAMPLING_METHODS,
        default=None,
        help="class-balanced sampling of training reads (default: the prepared set's)",
    )
    train.add_argument(
        "--threshold", type=float, default=None, help="repeat-factor threshold (default: the prepared set's)"
    )
    train.add_argument("--no-augment", action="store_true")
    add_augmentation_argument(train)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="auto",
        help="auto (default): mixed_float16 on a GPU with tensor cores, mixed_bfloat16 on a CPU with "
        "AVX-512 BF16 or AMX, float32 otherwise; the run's config records the one used",
    )
    train.add_argument(
        "--mixed-precision", action="store_true", help="deprecated: the same as --precision mixed_float16"
    )
    train.add_argument(
        "--init-from",
        metavar="RUN_OR_MODEL",
        help="fine-tune: start from this run's (or exported model's) best checkpoint; every layer is "
        "copied, the classifier only when the label maps match",
    )
    train.add_argument(
        "--freeze-encoder-epochs",
        type=int,
        default=0,
        metavar="N",
        help="with --init-from: keep the encoder fixed for the first N epochs",
    )
    train.add_argument(
        "--workers",
        metavar="HOST:PORT,...",
        help="train on several machines (MultiWorkerMirroredStrategy): every worker's address, the chief "
        "first; run the same command on each with its own --worker-index (TF_CONFIG works too)",
    )
    train.add_argument(
        "--worker-index", type=int, help="with --workers: 0 on the chief, 1, 2 ... on the others"
    )
    train.set_defaults(handler=command_train)
    finetune = commands.add_parser(
        "finetune",
        help="a round of the correction loop: corrections -> overlay -> fine-tune -> export -> evaluate",
    )
    finetune.add_argument(
        "model", help="the exported model to start from (the one corrections were pre-filled with)"
    )
    finetune.add_argument("--dataset", required=True, help="the dataset whose saved corrections to use")
    finetune.add_argument("--epochs", type=int, default=None, help="default: a third of the parent's epochs")
    finetune.set_defaults(handler=command_finetune)
    runs = commands.add_parser("runs", help="training runs").add_subparsers(
        dest="runs_command", required=True
    )
    runs.add_parser("list", help="all runs, newest first").set_defaults(handler=command_runs_list)
    show = runs.add_parser("show", help="a run's status, config and history")
    show.add_argument("name")
    show.set_defaults(handler=command_runs_show)
    resume_parser = runs.add_parser("resume", help="continue from the last finished epoch")
    resume_parser.add_argument("name")
    resume_parser.add_argument("--epochs", type=int, help="new total number of epochs")
    resume_parser.set_defaults(handler=command_runs_resume)
    cancel = runs.add_parser(
        "cancel", help="ask a running run to stop after its current batch (any process, any host)"
    )
    cancel.add_argument("name")
    cancel.set_defaults(handler=command_runs_cancel)
    delete = runs.add_parser("delete", help="delete a run folder")
    delete.add_argument("name")
    delete.set_defaults(handler=command_runs_delete)
