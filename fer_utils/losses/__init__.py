"""Losses of the study: paper W (weighted softmax, center, weighted-cluster), paper F (focal)
and imbalance-aware comparators, each as a function plus an ``nn.Module``; and the loss
*settings* the training loop uses, built by name with :func:`build_loss`.
"""
from .base import REDUCTIONS, WEIGHTED_REDUCTIONS, LossSetting, reduce_loss, reduce_weighted_loss
from .center import CenterLoss, center_loss, wen_center_update
from .focal import FocalLoss, focal_loss
from .island import IslandLoss, island_center_update, island_loss, island_pair_term
from .ldam import LDAMLoss, ldam_loss, ldam_margins
from .logit_adjusted import (BalancedSoftmaxLoss, LogitAdjustedLoss, balanced_softmax_loss,
                             logit_adjusted_loss)
from .registry import LOSSES, build_loss, loss_params, register
from .settings import (CenterSetting, IslandSetting, LDAMDRWSetting, LogitLossSetting,
                       WeightedClusterSetting)
from .softmax import (CrossEntropyLoss, WeightedSoftmaxLoss, cross_entropy_loss,
                      weighted_softmax_loss)
from .weighted_cluster import (WeightedClusterLoss, weighted_cluster_center_update,
                               weighted_cluster_denominators, weighted_cluster_loss)
from .weights import class_balanced_weights, class_weights_from_counts

__all__ = [
    "LOSSES", "REDUCTIONS", "WEIGHTED_REDUCTIONS",
    "BalancedSoftmaxLoss", "CenterLoss", "CenterSetting", "CrossEntropyLoss", "FocalLoss",
    "IslandLoss", "IslandSetting", "LDAMDRWSetting", "LDAMLoss", "LogitAdjustedLoss",
    "LogitLossSetting", "LossSetting", "WeightedClusterLoss", "WeightedClusterSetting",
    "WeightedSoftmaxLoss",
    "balanced_softmax_loss", "build_loss", "center_loss", "class_balanced_weights",
    "class_weights_from_counts", "cross_entropy_loss", "focal_loss", "island_center_update",
    "island_loss", "island_pair_term", "ldam_loss", "ldam_margins", "logit_adjusted_loss",
    "loss_params", "reduce_loss", "reduce_weighted_loss", "register", "wen_center_update",
    "weighted_cluster_center_update", "weighted_cluster_denominators", "weighted_cluster_loss",
    "weighted_softmax_loss",
]
