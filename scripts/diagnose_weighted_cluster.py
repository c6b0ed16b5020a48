"""Step-by-step trace of weighted-cluster + weighted softmax training from scratch.

    python scripts/diagnose_weighted_cluster.py                       # step schedule, lr 0.05
    python scripts/diagnose_weighted_cluster.py --schedule onecycle   # with warm-up

Prints, for the first ``--steps`` optimizer steps of a synthetic-faces run (the main job's
profile: ResNet-18, 48 px, batch 64, weighted-mean reduction), the two loss parts, the mean
embedding norm, the class-center norms and the largest |logit|. It shows why the synthetic
main job's weighted-cluster runs collapsed: with all centers at zero the first weighted-cluster
term is 0.5 ||x||^2 (about 20), its gradient at lr 0.05 blows the embedding up within a few
steps, the logits reach hundreds and the network falls into predicting one class.
"""
from __future__ import annotations

import argparse

from fer_utils.config import load_config
from fer_utils.training.trace import trace_first_steps


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--schedule", default="step", help="step (paper W) or onecycle (warm-up)")
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--steps", type=int, default=40)
    args = p.parse_args(argv)
    cfg = load_config(None, [
        "name=trace", "data.dataset=synthetic",
        'data.params={"n_train": 4000, "difficulty": 0.3}', "data.image_size=48", "batch_size=64",
        "stages.0.loss=weighted_cluster+weighted_softmax", "stages.0.epochs=4",
        f"stages.0.lr={args.lr}", f"stages.0.schedule={args.schedule}",
        "stages.0.reduction=weighted_mean", "bootstrap=0"])

    def show(step: int, r: dict) -> None:
        centers = r["criterion"].centers.norm(dim=1)
        print(f"step {step:3d} lr {r['lr']:.4f} "
              + " ".join(f"{k} {v:8.3f}" for k, v in r["values"].items() if k != "loss")
              + f" |emb| {float(r['embedding'].norm(dim=1).mean()):6.2f}"
              + f" max|logit| {float(r['logits'].abs().max()):7.1f}"
              + " |centers| " + " ".join(f"{float(c):5.1f}" for c in centers), flush=True)

    trace_first_steps(cfg, args.steps, show)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
