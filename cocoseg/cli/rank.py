"""``cocoseg rank MODEL_OR_ENSEMBLE DATASET``: which images to correct first, most uncertain on top."""

from __future__ import annotations

import dataclasses
import json

from cocoseg.cli.output import with_progress_bar, write
from cocoseg.pipeline.core import Settings, Workspace
from cocoseg.pipeline.inference import rank_split, ranking_file
from cocoseg.pipeline.inference.uncertainty import SCORE_DESCRIPTIONS, SCORES


def command_rank(arguments, settings: Settings, workspace: Workspace) -> int:
    ranking = with_progress_bar(
        f"ranking {arguments.dataset}/{arguments.split} with {arguments.model}",
        "image",
        lambda progress: rank_split(
            workspace,
            arguments.model,
            arguments.dataset,
            arguments.split,
            settings.max_annotation_bytes,
            by=arguments.by,
            progress=progress,
        ),
    )
    saved = ranking_file(workspace, ranking.model, ranking.dataset, ranking.split)
    top = ranking.rows[: arguments.top] if arguments.top > 0 else ranking.rows
    if arguments.json:
        payload = {**ranking.to_dict(), "rows": [dataclasses.asdict(row) for row in top], "file": str(saved)}
        write(json.dumps(payload, indent=2))
        return 0
    if not ranking.rows:
        write(f"no images to rank in {ranking.dataset}/{ranking.split}")
    else:
        write(f"{'rank':>4}  {'file':<32} {arguments.by:>12}  predicted classes")
        for rank, row in enumerate(top, start=1):
            score = row.scores.get(arguments.by)
            shown = "n/a" if score is None else f"{score:.4f}"
            write(f"{rank:>4}  {row.file_name[:32]:<32} {shown:>12}  {', '.join(row.classes) or '-'}")
        write(f"{arguments.by}: {SCORE_DESCRIPTIONS[arguments.by]}; {len(ranking.rows)} images ranked")
    for skipped in ranking.skipped:
        write(f"skipped {skipped['file_name']}: {skipped['reason']}")
    write(f"ranking written to {saved}")
    return 0


def add_rank_command(commands) -> None:
    rank = commands.add_parser(
        "rank", help="rank a split's images by how unsure a model or ensemble is (correct the top first)"
    )
    rank.add_argument("model", help="a model or ensemble name")
    rank.add_argument("dataset", help="a registered dataset (annotated or not)")
    rank.add_argument("--split", default="val")
    rank.add_argument(
        "--by",
        choices=SCORES,
        default="entropy",
        help="; ".join(f"{name}: {text}" for name, text in SCORE_DESCRIPTIONS.items()),
    )
    rank.add_argument("--top", type=int, default=20, help="rows to print (0: all; the file holds all)")
    rank.add_argument("--json", action="store_true")
    rank.set_defaults(handler=command_rank)
