"""Low-resolution semantic masks for many images at once, rasterised in batches.

Dataset statistics need the pixel share of every class over hundreds of thousands
of images. Calling a rasteriser per annotation costs tens of microseconds of Python
and NumPy overhead each; here annotations are buffered and a whole batch of
polygons is rasterised with a handful of vectorised operations:

1. every polygon edge is crossed with the pixel-centre rows it spans (half-open
   rule, so each row of a closed ring gets an even number of crossings);
2. crossings are sorted by (ring, row, x) and paired into horizontal runs
   (even-odd rule); pixels whose centre lies in a run are inside;
3. the batch's pixels are merged into the per-image canvases with the label map's
   order-free overlap rule (``masks.paint_instance`` applies the same rule to one
   full-resolution instance at a time).

Pixel-centre sampling is unbiased: an object smaller than a pixel paints it or
not in proportion to its area, so class pixel totals stay right on average (OpenCV's
``fillPoly`` paints every pixel an edge touches and triples small objects' area).
"""

from __future__ import annotations

import dataclasses
import threading

import numpy as np

from cocoseg.pipeline.data.labels import IGNORE_INDEX

BATCH_ANNOTATIONS = 20_000


@dataclasses.dataclass
class _Batch:
    """Annotations buffered for one vectorised rasterisation."""

    coordinates: list[float] = dataclasses.field(default_factory=list)
    ring_lengths: list[int] = dataclasses.field(default_factory=list)
    ring_owner: list[int] = dataclasses.field(default_factory=list)
    owner_image: list[int] = dataclasses.field(default_factory=list)
    owner_class: list[int] = dataclasses.field(default_factory=list)
    owner_crowd: list[bool] = dataclasses.field(default_factory=list)
    owner_scale: list[tuple[float, float]] = dataclasses.field(default_factory=list)
    sampled_pixels: list[np.ndarray] = dataclasses.field(default_factory=list)
    sampled_owner: list[int] = dataclasses.field(default_factory=list)


class LowResolutionCanvases:
    """``(images, resolution, resolution)`` uint8 class-index masks, filled in batches.

    A full batch is rasterised on a background thread while the caller goes on
    parsing (NumPy releases the GIL in its array loops); one batch at most is in
    flight, and ``finish()`` waits for it. Only that thread touches the canvases
    until ``finish()`` returns.

    Args:
        images: number of images.
        resolution: side of each square canvas (images are stretched to it).
        crowd_ignore: crowd regions become 255 (else they paint their class).
        overlap: ``ignore-different`` or ``ignore-any`` (see ``cocoseg.pipeline.data.masks``).
    """

    def __init__(self, images: int, resolution: int, crowd_ignore: bool, overlap: str) -> None:
        if images * resolution * resolution >= 2**31:
            raise ValueError("too many images for one set of canvases (int32 pixel indices)")
        self.resolution = resolution
        self.crowd_ignore = crowd_ignore
        self.overlap = "ignore-any" if overlap == "ignore-any" else "ignore-different"
        self.canvases = np.zeros((images, resolution, resolution), dtype=np.uint8)
        self._batch = _Batch()
        self._worker: threading.Thread | None = None
        self._worker_error: BaseException | None = None

    def _new_owner(self, image_index: int, class_index: int, crowd: bool, scale: tuple[float, float]) -> int:
        batch = self._batch
        batch.owner_image.append(image_index)
        batch.owner_class.append(class_index)
        batch.owner_crowd.append(crowd)
        batch.owner_scale.append(scale)
        return len(batch.owner_image) - 1

    def add_polygons(
        self,
        image_index: int,
        class_index: int,
        crowd: bool,
        polygons: list[list[float]],
        width: int,
        height: int,
    ) -> None:
        """Buffer one annotation's polygons (full-resolution coordinates)."""
        owner = self._new_owner(
            image_index, class_index, crowd, (self.resolution / width, self.resolution / height)
        )
        batch = self._batch
        for polygon in polygons:
            batch.coordinates.extend(polygon)
            batch.ring_lengths.append(len(polygon) // 2)
            batch.ring_owner.append(owner)
        if len(batch.owner_image) >= BATCH_ANNOTATIONS:
            self.flush()

    def add_region(self, image_index: int, class_index: int, crowd: bool, region: np.ndarray) -> None:
        """Buffer one annotation already sampled at this resolution (boolean R x R)."""
        owner = self._new_owner(image_index, class_index, crowd, (1.0, 1.0))
        rows, cols = np.nonzero(region)
        self._batch.sampled_pixels.append(
            (image_index * self.resolution**2 + rows * self.resolution + cols).astype(np.int32)
        )
        self._batch.sampled_owner.append(owner)

    def flush(self) -> None:
        """Start rasterising what is buffered (after the previous batch is done)."""
        self._wait()
        if not self._batch.owner_image:
            return
        batch, self._batch = self._batch, _Batch()
        self._worker = threading.Thread(target=self._process, args=(batch,), name="lowres-batch", daemon=True)
        self._worker.start()

    def finish(self) -> np.ndarray:
        """Rasterise everything buffered, wait for it, and return the canvases."""
        self.flush()
        self._wait()
        return self.canvases

    def _wait(self) -> None:
        if self._worker is not None:
            self._worker.join()
            self._worker = None
        if self._worker_error is not None:
            error, self._worker_error = self._worker_error, None
            raise error

    def _process(self, batch: _Batch) -> None:
        try:
            pixels, owners = self._rasterise_polygons(batch)
            if batch.sampled_pixels:
                lengths = [len(sampled) for sampled in batch.sampled_pixels]
                pixels = np.concatenate([pixels, *batch.sampled_pixels])
                owners = np.concatenate(
                    [owners, np.repeat(np.asarray(batch.sampled_owner, dtype=np.int32), lengths)]
                )
            self._merge(batch, pixels, owners)
        except BaseException as error:  # noqa: BLE001 - handed to the caller's thread by _wait
            self._worker_error = error

    def _rasterise_polygons(self, batch: _Batch) -> tuple[np.ndarray, np.ndarray]:
        """Flat canvas indices of every pixel centre inside the batch's rings, with owners."""
        empty = np.zeros(0, dtype=np.int32)
        if not batch.ring_lengths:
            return empty, empty
        resolution = self.resolution
        lengths = np.asarray(batch.ring_lengths, dtype=np.int64)
        ring_owner = np.asarray(batch.ring_owner, dtype=np.int32)
        vertex_ring = np.repeat(np.arange(len(lengths)), lengths)
        scale = np.asarray(batch.owner_scale, dtype=np.float64)[ring_owner[vertex_ring]]
        points = np.asarray(batch.coordinates, dtype=np.float64).reshape(-1, 2) * scale
        ring_start = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        following = np.arange(len(points)) + 1
        following[ring_start + lengths - 1] = ring_start
        x1, y1 = points[:, 0], points[:, 1]
        x2, y2 = x1[following], y1[following]
        first_row = np.clip(np.ceil(np.minimum(y1, y2) - 0.5), 0, resolution).astype(np.int64)
        end_row = np.clip(np.ceil(np.maximum(y1, y2) - 0.5), 0, resolution).astype(np.int64)
        spans = np.maximum(end_row - first_row, 0)
        edge = np.repeat(np.arange(len(points)), spans)
        if not len(edge):
            return empty, empty
        row = first_row[edge] + (np.arange(len(edge)) - np.repeat(np.cumsum(spans) - spans, spans))
        rise = (y2 - y1)[edge]
        crossing = x1[edge] + (row + 0.5 - y1[edge]) * (x2 - x1)[edge] / np.where(rise == 0, 1.0, rise)
        ring = vertex_ring[edge]
        # one float key sorts by (ring, row, x): x is clipped to a band narrower than a row's stride
        stride = resolution + 4.0
        clipped = np.clip(crossing, -1.0, resolution + 1.0) + 1.0
        order = np.argsort((ring * resolution + row) * stride + clipped)
        crossing, row, ring = crossing[order], row[order], ring[order]
        run_start = np.clip(np.ceil(crossing[0::2] - 0.5), 0, resolution).astype(np.int64)
        run_end = np.clip(np.ceil(crossing[1::2] - 0.5), 0, resolution).astype(np.int64)
        run_row, run_ring = row[0::2], ring[0::2]
        run_length = np.maximum(run_end - run_start, 0)
        # one value per run, then one gather + one add per pixel (the arrays that get large)
        run_owner = ring_owner[run_ring]
        run_image = np.asarray(batch.owner_image, dtype=np.int64)[run_owner]
        run_offset = np.cumsum(run_length) - run_length
        run_base = (run_image * resolution**2 + run_row * resolution + run_start - run_offset).astype(
            np.int32
        )
        run = np.repeat(np.arange(len(run_length), dtype=np.int32), run_length)
        pixels = run_base[run] + np.arange(len(run), dtype=np.int32)
        return pixels, run_owner[run]

    def _merge(self, batch: _Batch, pixels: np.ndarray, owners: np.ndarray) -> None:
        """Apply the overlap and crowd rules to the batch and merge it into the canvases."""
        flat = self.canvases.reshape(-1)
        classes = np.asarray(batch.owner_class, dtype=np.uint8)[owners]
        crowd = np.asarray(batch.owner_crowd, dtype=bool)[owners] & self.crowd_ignore
        flat[pixels[crowd]] = IGNORE_INDEX
        pixels, owners, classes = pixels[~crowd], owners[~crowd], classes[~crowd]
        if not len(pixels):
            return
        if self.overlap == "ignore-any":
            self._merge_ignore_any(batch, flat, pixels, owners)
            return
        # ignore-different without sorting: a pixel already holding another class
        # conflicts; after scattering the batch, a pixel whose value differs from an
        # entry's class was claimed by two classes within the batch.
        before = flat[pixels]
        conflict = (before != 0) & (before != classes)
        flat[pixels] = classes
        conflict |= flat[pixels] != classes
        flat[pixels[conflict]] = IGNORE_INDEX

    def _merge_ignore_any(
        self, batch: _Batch, flat: np.ndarray, pixels: np.ndarray, owners: np.ndarray
    ) -> None:
        """Pixels covered by two different annotations (or already painted) become 255."""
        # one entry per (annotation, pixel): a ring overlapping its sibling is not an overlap
        keys = np.unique(owners.astype(np.int64) * flat.size + pixels)
        owners, pixels = keys // flat.size, keys % flat.size
        order = np.argsort(pixels, kind="stable")
        pixels, owners = pixels[order], owners[order]
        starts = np.flatnonzero(np.concatenate([[True], pixels[1:] != pixels[:-1]]))
        unique_pixels = pixels[starts]
        covering = np.diff(np.concatenate([starts, [len(pixels)]]))
        classes = np.asarray(batch.owner_class, dtype=np.uint8)[owners[starts]]
        current = flat[unique_pixels]
        painted = (current == 0) & (covering == 1)
        flat[unique_pixels] = np.where(painted, classes, IGNORE_INDEX).astype(np.uint8)
