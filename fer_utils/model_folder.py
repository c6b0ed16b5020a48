"""A trained model as a folder one can ship: weights as safetensors, the run's config, its test
metrics and a model card (``python -m fer_utils export RUN_DIR OUT_DIR``).

A model folder works wherever a finished run directory does: ``evaluate``, ``predict`` and
``model.pretrained`` read it, and nothing in it is unpickled (safetensors holds raw tensors,
the rest is YAML, JSON and Markdown), so a folder someone hands you cannot execute code.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
import yaml

from . import io as fio
from .config import SOFT_TARGET_WEIGHT, stage_extras
from .metrics import wilson_interval
from .paths import PROJECT_ROOT

WEIGHTS = "model.safetensors"
#: The model the project ships: ``predict`` uses it when no model is named.
SHIPPED = PROJECT_ROOT / "results" / "models" / "fer2013"
#: Copied from the run as they are: what ``load_run`` and ``predict`` read besides the weights.
RUN_FILES = ("config.yaml", "metrics.json", "run_info.json")
CARD = "MODEL_CARD.md"
#: Limits of every model folder, then those of the dataset it was trained on.
KNOWN_LIMITS = (
    "Faces only: photos need a face detector and the same crop as training (`predict` uses "
    "MTCNN, then the run's own resize to the size above).",
    "Basic expression categories of one dataset; no intensity, compound expressions or valence.",
)
DATASET_LIMITS = {
    "fer2013": (
        "FER2013: 48 x 48 grayscale web faces found by image search, mostly frontal; its labels "
        "are noisy (human accuracy on it is estimated near 65%) and its faces are skewed in age, "
        "ethnicity and pose; nothing here measures fairness across groups.",
        "Disgust has 436 training images of 28,709: its recall is the least certain (see the table).",
    ),
}


def _distillation(data: dict) -> str:
    """The card's words for a distilled model: its soft-target file and weight."""
    if not data.get("soft_targets"):
        return ""
    return (f"; distilled from the teacher probabilities `{Path(data['soft_targets']).name}` "
            f"(weight {data.get('soft_target_weight', SOFT_TARGET_WEIGHT):g})")


def is_model_folder(path: str | Path) -> bool:
    return (Path(path) / WEIGHTS).is_file() and (Path(path) / "config.yaml").is_file()


def read_weights(folder: str | Path, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """The model's state dict from a model folder, in float32 (weights may ship as fp16)."""
    from safetensors.torch import load_file
    state = load_file(str(Path(folder) / WEIGHTS), device=str(device))
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


def export_model(run_dir: str | Path, out_dir: str | Path, *, fp16: bool = False,
                 title: str | None = None, recipe: str = "") -> Path:
    """Write ``run_dir``'s best model as a model folder in ``out_dir``; returns the weights path.

    ``fp16`` halves the file (check the accuracy of the exported folder with ``evaluate``);
    ``recipe`` is a line of the card saying how the model was trained (the command)."""
    from safetensors.torch import save_file
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    ckpt = run_dir / "checkpoints" / "best.pt"
    if not ckpt.exists():
        raise FileNotFoundError(f"{run_dir} has no checkpoints/best.pt: only a finished run can be exported")
    state = torch.load(ckpt, map_location="cpu", weights_only=True)["model"]
    state = {k: (v.half() if fp16 and v.is_floating_point() else v).contiguous() for k, v in state.items()}
    out_dir.mkdir(parents=True, exist_ok=True)
    weights = out_dir / WEIGHTS
    save_file(state, str(weights), metadata={"format": "fer_utils model folder", "source_run": run_dir.name,
                                             "dtype": "float16" if fp16 else "float32"})
    for name in RUN_FILES:
        if (run_dir / name).exists():
            fio.write_text(out_dir / name, (run_dir / name).read_text())
    fio.write_text(out_dir / CARD, model_card(run_dir, weights, title=title, recipe=recipe))
    return weights


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.2f}"


def model_card(run_dir: Path, weights: Path, *, title: str | None = None, recipe: str = "") -> str:
    """The card's Markdown, from the run's config, metrics and run_info."""
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    info = json.loads((run_dir / "run_info.json").read_text()) if (run_dir / "run_info.json").exists() else {}
    test, data, model = metrics["test"], cfg["data"], cfg["model"]
    ci = test.get("ci", {})
    def with_ci(m):
        lo, hi = ci.get(m, (None, None))
        return f"{_pct(test[m])}" + (f" [{_pct(lo)}, {_pct(hi)}]" if lo is not None else "")
    stages = "; ".join(f"{s['loss']} {s['epochs']} epochs, {s.get('schedule')} lr {s['lr']}"
                       + "".join(f", {x}" for x in stage_extras(s)) + f", batch {cfg.get('batch_size')}"
                       for s in cfg["stages"])
    conf = test["confusion_matrix"]
    rows = []
    for i, name in enumerate(test["class_names"]):
        n, hit = int(sum(conf[i])), int(conf[i][i])
        lo, hi = wilson_interval(hit, n) if n else (None, None)
        rows.append(f"| {name} | {n} | {_pct(hit / n if n else None)} | [{_pct(lo)}, {_pct(hi)}] |")
    git, machine = info.get("git", {}), info.get("machine", {})
    lines = [
        f"# {title or 'FER model ' + run_dir.name}", "",
        f"- **Weights:** `{WEIGHTS}` ({weights.stat().st_size / 2**20:.1f} MiB, "
        f"{'float16' if 'F16' in _dtypes(weights) else 'float32'}), "
        f"loaded without pickle by `evaluate`, `predict` and `model.pretrained`.",
        f"- **Architecture:** {model['backbone']} (head `{model.get('head')}`), "
        f"{data['image_size']} px, {data.get('in_chans')} channel(s), normalisation `{data.get('normalization')}`, "
        f"test-time augmentation `{cfg.get('tta', 'none')}`.",
        f"- **Training:** {data['dataset']} ({stages}); augmentation `{data.get('augmentation')}`"
        f"{'; mixup alpha ' + str(data['mixup']) if data.get('mixup') else ''}"
        f"{_distillation(data)}; "
        f"model chosen on the validation split ({cfg.get('select_metric')}; val_from "
        f"`{data.get('val_from')}`), never on the test split.",
        f"- **Recipe:** {recipe or 'see config.yaml'}",
        f"- **Commit:** {git.get('sha', 'unrecorded')}{' (dirty tree)' if git.get('dirty') else ''}; host "
        f"{machine.get('cpu_model', 'unrecorded')} ({machine.get('cpu_capability', '?')}, "
        f"{machine.get('cpu_count', '?')} cores, {machine.get('device', '?')}); training time "
        f"{metrics.get('train_time_s', 0) / 60:.1f} min.",
        "", f"## Test split ({test['n']} images)", "",
        f"Accuracy {with_ci('accuracy')}, macro-F1 {with_ci('f1')}, balanced accuracy "
        f"{with_ci('balanced_accuracy')} (%, 95% stratified bootstrap intervals).", "",
        "| class | images | recall % | 95% Wilson interval |", "|---|---|---|---|", *rows,
        "", "## Known limits", "",
        *(f"- {line}" for line in KNOWN_LIMITS + DATASET_LIMITS.get(data["dataset"], ())), ""]
    return "\n".join(lines)


def _dtypes(weights: Path) -> set[str]:
    """The tensor dtypes a safetensors file declares in its header (no tensor is read)."""
    import struct
    with open(weights, "rb") as f:
        header = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
    return {v["dtype"] for k, v in header.items() if k != "__metadata__"}
