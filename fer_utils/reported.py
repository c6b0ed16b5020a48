"""Numbers the two papers printed, for side-by-side tables (percent, as printed).

Paper W: Sensors 2020, Tables 5 (SE-ResNet-50) and 6 (ResNet-50); AffectNet, 8 classes,
single runs. Paper F: ICANN 2019, Tables 2-5; 10-fold CV accuracy on CK+ / Oulu-CASIA.
Source: ../shared/docs/paper-notes.md (checked against the paper texts in ../shared/seeds).
"""
from __future__ import annotations

PAPER_W_LOSSES = ("softmax", "center+softmax", "weighted_softmax", "center+weighted_softmax",
                  "weighted_cluster+weighted_softmax")
PAPER_W_METRICS = ("accuracy", "f1", "kappa", "alpha", "auc_pr", "auc")

# (backbone, pretrained) -> loss -> (Acc, F1, Kappa, Alpha, AUCPR, AUC)
PAPER_W: dict[tuple[str, bool], dict[str, tuple[float, ...]]] = {
    ("seresnet50", False): {
        "softmax": (50.65, 46.87, 43.60, 42.60, 62.87, 90.67),
        "center+softmax": (46.07, 39.24, 38.37, 36.89, 55.96, 87.92),
        "weighted_softmax": (56.37, 56.41, 50.14, 50.09, 62.27, 90.49),
        "center+weighted_softmax": (56.90, 57.06, 50.74, 50.71, 62.24, 90.33),
        "weighted_cluster+weighted_softmax": (56.27, 56.42, 50.03, 49.97, 61.57, 90.10),
    },
    ("seresnet50", True): {
        "softmax": (52.22, 49.51, 45.40, 44.54, 63.27, 90.75),
        "center+softmax": (47.08, 40.02, 39.51, 38.27, 54.91, 86.75),
        "weighted_softmax": (59.72, 59.72, 53.97, 53.93, 66.47, 91.85),
        "center+weighted_softmax": (59.60, 59.50, 53.83, 53.82, 65.35, 91.21),
        "weighted_cluster+weighted_softmax": (60.70, 60.49, 55.09, 55.06, 66.55, 91.82),
    },
}
# Table 6 (ResNet-50): accuracy only is reproduced in the notes.
PAPER_W_RESNET50_ACC: dict[bool, dict[str, float]] = {
    False: dict(zip(PAPER_W_LOSSES, (49.85, 46.62, 57.40, 57.20, 57.37))),
    True: dict(zip(PAPER_W_LOSSES, (51.88, 48.33, 58.65, 58.27, 59.45))),
}

# Paper F strategies (Table 4), in the paper's order.
PAPER_F_STRATEGIES = ("focal_only", "ce_only", "joint", "focal_then_ce", "ce_then_focal")
PAPER_F_TABLE4: dict[str, dict[str, float]] = {
    "ckplus": dict(zip(PAPER_F_STRATEGIES, (98.0, 98.2, 97.8, 98.5, 98.8))),
    "oulu_casia": dict(zip(PAPER_F_STRATEGIES, (88.0, 87.7, 87.1, 85.1, 88.3))),
}
# Tables 2, 3, 5: backbone -> dataset -> (CE only, CE -> focal).
PAPER_F_BACKBONES: dict[str, dict[str, tuple[float, float]]] = {
    "inception_v3": {"ckplus": (98.2, 98.8), "oulu_casia": (87.7, 88.3)},
    "vgg16": {"ckplus": (94.6, 97.2), "oulu_casia": (83.3, 83.7)},
    "resnet18": {"ckplus": (98.4, 98.6), "oulu_casia": (87.8, 88.3)},
}


def paper_f_dataset_key(dataset: str) -> str | None:
    """Map our dataset names to the paper's (CK+48 is the CK+ protocol at 48 px)."""
    return {"ckplus": "ckplus", "ckplus48": "ckplus", "oulu_casia": "oulu_casia"}.get(dataset)
