"""MONAI Label app that serves the collection's bundles from a local datastore.

Start it from the repository root (README, "Serve with MONAI Label"):

    monailabel start_server --app apps/monailabel --studies <datastore folder> --host 127.0.0.1 --port 8000 \
        --conf models all

``--conf models a,b`` picks bundles by folder name (default ``all``); ``--conf bundles <folder>`` serves bundles from
another folder than the repository's ``bundles/`` (the tests serve copies that carry freshly trained weights).

Segmentation, classification and detection bundles go through MONAI Label's own ``BundleInferTask`` and
``BundleTrainTask`` unchanged. Registration and super-resolution bundles produce an image rather than a label, so
they are served by :class:`BundleImageResultTask`, which runs the bundle's own ``inference.yaml`` on the request's
image (and, for registration, the ``fixed`` image named in the request's params).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import monailabel
from monailabel.interfaces.app import MONAILabelApp
from monailabel.interfaces.tasks.infer_v2 import InferTask, InferType
from monailabel.interfaces.tasks.strategy import Strategy
from monailabel.interfaces.tasks.train import TrainTask
from monailabel.tasks.activelearning.first import First
from monailabel.tasks.activelearning.random import Random
from monailabel.tasks.infer.bundle import BundleInferTask
from monailabel.tasks.train.bundle import BundleTrainTask

logger = logging.getLogger(__name__)

REPOSITORY = Path(__file__).resolve().parents[2]
#: task words MONAI Label's own bundle tasks understand (read from the folder name, as MONAI Label does)
MONAI_LABEL_KINDS = ("segmentation", "classification", "detection")
#: task words served by BundleImageResultTask: the result is an image (warped image, super-resolved image)
IMAGE_RESULT_KINDS = ("registration", "super_resolution")
RESULT_SUFFIXES = (".nii.gz", ".nii", ".png", ".tif", ".tiff", ".jpg", ".jpeg")


def bundle_kind(name: str) -> str | None:
    """The task word in a bundle's folder name, or None when it has none this app can serve."""
    for kind in MONAI_LABEL_KINDS + IMAGE_RESULT_KINDS:
        if kind in name:
            return kind
    return None


def has_weights(bundle: Path) -> bool:  # noqa: D103
    return (bundle / "models" / "model.pt").is_file() or (bundle / "models" / "model.ts").is_file()


def select_bundles(bundles_dir: Path, names: str) -> dict[str, Path]:
    """Bundle folders to serve: ``names`` is ``all`` or a comma-separated list of folder names.

    Raises:
        ValueError: if the folder does not exist or a requested name is not a bundle in it.
    """
    if not bundles_dir.is_dir():
        raise ValueError(f"{bundles_dir}: bundles folder does not exist (set --conf bundles <folder>)")
    available = {p.name: p for p in sorted(bundles_dir.iterdir()) if (p / "configs" / "metadata.json").is_file()}
    if names.strip().lower() == "all":
        return available
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in wanted if n not in available]
    if unknown:
        raise ValueError(f"{bundles_dir}: no bundle named {unknown}; available: {sorted(available)}")
    return {n: available[n] for n in wanted}


class BundleImageResultTask(InferTask):
    """Serve a registration or super-resolution bundle through its own ``inference.yaml``.

    The bundle's inference config is run with ``datalist`` set to the request's item and ``output_dir`` set to a
    fresh temporary folder; the image the bundle writes there is the result. Which of the written files is the
    result is named by the config id ``result_postfix`` (e.g. ``_sr``, ``_warped``); every written file is listed
    in the result JSON.

    Args:
        path: bundle folder (with ``configs/`` and ``models/model.pt``).
        kind: ``registration`` or ``super_resolution``.
        resolve_image: maps an image id of the datastore (or a path) to a file path, for the ``fixed`` image.
    """

    def __init__(self, path: Path, kind: str, resolve_image: Callable[[str], str]):
        self.path = Path(path)
        self.kind = kind
        self.resolve_image = resolve_image
        meta = json.loads((self.path / "configs" / "metadata.json").read_text())
        image_spec = next(iter(meta["network_data_format"]["inputs"].values()))
        spatial_shape = image_spec.get("spatial_shape") or [0, 0, 0]
        super().__init__(
            type=InferType.OTHERS,
            labels=None,
            dimension=len(spatial_shape),
            description=meta.get("description", ""),
            config={"device": "cpu", "bundle_kind": kind},
        )
        self.version = meta.get("version")
        self.valid = (self.path / "configs" / "inference.yaml").is_file() and has_weights(self.path)

    def is_valid(self) -> bool:  # noqa: D102
        return self.valid

    def info(self) -> dict[str, Any]:  # noqa: D102
        info = super().info()
        info["version"] = self.version
        return info

    def _item(self, request: dict[str, Any]) -> dict[str, str]:
        item = {"image": str(request["image"])}
        if self.kind == "registration":
            fixed = request.get("fixed")
            if not fixed:
                raise RequestError(
                    400,
                    f"{self.path.name}: a registration request needs params {{'fixed': <image id of the fixed image>}}",
                )
            item["fixed"] = fixed if os.path.exists(fixed) else self.resolve_image(fixed)
        return item

    def __call__(self, request: dict[str, Any]) -> tuple[str, dict[str, Any]]:  # noqa: D102
        from common.workflows import load_config, run_workflow

        start = time.time()
        item = self._item(request)
        out_dir = Path(tempfile.mkdtemp(prefix=f"{self.path.name}_"))
        try:
            device = str(request.get("device") or "cpu")
            device = "cpu" if device.startswith("cuda") and not _cuda_available() else device
            overrides = {"bundle_root": str(self.path), "datalist": [item], "output_dir": str(out_dir)}
            run_workflow(self.path, "inference", quiet=True, device=f"$torch.device('{device}')", **overrides)
            written = sorted(p for p in out_dir.rglob("*") if p.is_file())
            postfix = load_config(self.path, "inference", **overrides).get("result_postfix", "")
            images = [p for p in written if p.name.lower().endswith(RESULT_SUFFIXES)]
            chosen = [p for p in images if postfix and file_stem(p).endswith(postfix)] or images
            if not chosen:
                raise RuntimeError(f"{self.path.name}: inference wrote no image to {out_dir}: {written}")
            # MONAI Label deletes the result after sending it; keep it outside the folder we remove below
            result = Path(tempfile.mkstemp(suffix=file_suffix(chosen[0]))[1])
            shutil.copyfile(chosen[0], result)
        finally:
            shutil.rmtree(out_dir, ignore_errors=True)
        params = {
            "bundle": self.path.name,
            "kind": self.kind,
            "outputs": [p.name for p in written],
            "result": chosen[0].name,
            "latencies": {"total": round(time.time() - start, 4)},
        }
        return str(result), params


class ClassificationBundleInferTask(BundleInferTask):
    """MONAI Label's ``BundleInferTask`` for classification bundles, with two changes a user meets:

    - the class names keep the case of ``channel_def`` (MONAI Label lowercases them: ``FTC`` became ``ftc``);
    - the answer is also a file (the JSON document of the class scores), so ``output=image`` and the default
      multipart answer return it instead of failing with HTTP 500 (MONAI Label's classification writer returns no
      file, and its ``send_response`` then builds a ``FileResponse`` of None).
    """  # noqa: D415

    def __init__(self, path: str, conf: dict[str, str], **kwargs: Any):
        super().__init__(path, conf, **kwargs)
        meta = json.loads((Path(path) / "configs" / "metadata.json").read_text())
        channel_def = meta["network_data_format"]["outputs"]["pred"].get("channel_def", {})
        self.labels = {v: int(k) for k, v in channel_def.items() if v.lower() != "background"}

    def writer(self, data: dict[str, Any], extension: str | None = None, dtype: Any = None) -> tuple[Any, Any]:
        """The classification result JSON, also written to a file that MONAI Label returns and then deletes."""
        _, result = super().writer(data, extension, dtype)
        fd, path = tempfile.mkstemp(suffix=".json", prefix="classification_")
        with os.fdopen(fd, "w") as f:
            json.dump(result, f, indent=1)
        return path, result


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def file_suffix(path: Path) -> str:  # noqa: D103
    return ".nii.gz" if path.name.endswith(".nii.gz") else path.suffix


def file_stem(path: Path) -> str:  # noqa: D103
    return path.name[: -len(file_suffix(path))]


class BundleCollectionApp(MONAILabelApp):
    """The collection's bundles behind one MONAI Label server."""

    def __init__(self, app_dir: str, studies: str, conf: dict[str, str]):
        self.bundles_dir = Path(conf.get("bundles") or REPOSITORY / "bundles").resolve()
        self.bundles = select_bundles(self.bundles_dir, conf.get("models", "all"))
        for name, path in self.bundles.items():
            if bundle_kind(name) is None:
                logger.warning(f"{path}: no task word in the folder name; not served")
            elif not has_weights(path):
                # MONAI Label skips such bundles silently; say so, with the fix
                logger.warning(
                    f"{path}: no models/model.pt or models/model.ts; not served. Train it first: "
                    f"python -m monai.bundle run --config_file {path}/configs/train.yaml"
                )
        super().__init__(
            app_dir=app_dir,
            studies=studies,
            conf=conf,
            name="MONAI clinical imaging bundles",
            description="The collection's bundles, served from a local datastore",
            version=monailabel.__version__,
        )

    def init_datastore(self) -> Any:
        """MONAI Label's datastore, whose local form also lists ``*.dcm`` files (single-image DICOM mammograms) and
        ``*.tiff`` files (MIDOG's ``001.tiff`` ...; MONAI Label lists ``*.tif`` only).

        Returns:
            The datastore MONAI Label would build, with ``*.dcm`` and ``*.tiff`` among the local file patterns.
        """  # noqa: D205
        from monailabel.config import settings

        for pattern in ("*.dcm", "*.tiff"):
            if pattern not in settings.MONAI_LABEL_DATASTORE_FILE_EXT:
                settings.MONAI_LABEL_DATASTORE_FILE_EXT = [*settings.MONAI_LABEL_DATASTORE_FILE_EXT, pattern]
        return super().init_datastore()

    def _servable(self, kinds: tuple[str, ...]) -> dict[str, Path]:
        return {n: p for n, p in self.bundles.items() if bundle_kind(n) in kinds and has_weights(p)}

    def init_infers(self) -> dict[str, InferTask]:  # noqa: D102
        infers: dict[str, InferTask] = {}
        for name, path in self._servable(MONAI_LABEL_KINDS).items():
            kind = bundle_kind(name)
            task_class = ClassificationBundleInferTask if kind == "classification" else BundleInferTask
            task = task_class(str(path), self.conf)
            if task.is_valid():
                infers[name] = task
            else:
                logger.warning(f"{path}: MONAI Label's BundleInferTask rejected the bundle")
        for name, path in self._servable(IMAGE_RESULT_KINDS).items():
            infers[name] = BundleImageResultTask(path, bundle_kind(name), self._resolve_image)
        logger.info(f"Serving inference for: {sorted(infers)}")
        return infers

    def init_trainers(self) -> dict[str, TrainTask]:  # noqa: D102
        # image-result bundles train on pairs or HR tiles, not on image/label pairs of a datastore
        trainers: dict[str, TrainTask] = {}
        for name, path in self._servable(MONAI_LABEL_KINDS).items():
            task = BundleTrainTask(str(path), self.conf)
            if task.is_valid():
                trainers[name] = task
        return trainers

    def init_strategies(self) -> dict[str, Strategy]:  # noqa: D102
        return {"random": Random(), "first": First()}

    def _resolve_image(self, image_id: str) -> str:
        uri = self.datastore().get_image_uri(image_id)
        if not uri or not os.path.exists(uri):
            raise RequestError(404, f"image '{image_id}' is not in the datastore (nor a file on the server)")
        return uri

    def infer(self, request: dict[str, Any], datastore: Any = None) -> dict[str, Any]:
        """MONAI Label's ``infer``, with a bad request answered by a 4xx whose body says what is wrong.

        MONAI Label answers an unknown model, an unknown image or a bundle's own input error with a bare HTTP 500
        and keeps the message in the server log.
        """
        from fastapi import HTTPException

        from common.config import root_cause
        from common.data import DatasetError

        try:
            model = request.get("model")
            if model not in self._infers:
                raise RequestError(404, f"no model '{model}'; this server serves {sorted(self._infers)}")
            image = request.get("image")
            if isinstance(image, str) and not os.path.exists(image):
                self._resolve_image(image)
            task = self._infers[model]
            if isinstance(task, BundleImageResultTask):
                task._item(request)  # a registration request without (or with an unknown) `fixed` stops here
            return super().infer(request, datastore)
        except RequestError as exc:
            raise HTTPException(status_code=exc.status, detail=str(exc)) from exc
        except (DatasetError, ValueError, FileNotFoundError, RuntimeError) as exc:
            cause = root_cause(exc)
            if isinstance(cause, (DatasetError, ValueError, FileNotFoundError)):
                raise HTTPException(status_code=422, detail=f"{model}: {cause}") from exc
            raise


class RequestError(ValueError):
    """A request the server cannot answer, with the HTTP status to answer it with."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
