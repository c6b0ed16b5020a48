"""Training: the loop, run directories, and evaluation of finished runs."""
from .loop import (NonFiniteLossError, Trainer, is_finished, predict, run_dir_of, stage1_donor,
                   stage1_twins, train_run)

__all__ = ["NonFiniteLossError", "Trainer", "is_finished", "predict", "run_dir_of", "stage1_donor",
           "stage1_twins", "train_run"]
