"""Grids of run configs (no images are read)."""
import pytest

from fer_utils import study


def test_paper_w_grid_is_seed_major_with_per_loss_seeds_and_schedule():
    base = study.base_config(dataset="synthetic", image_size=32)
    configs = study.paper_w_grid(base, backbones=["resnet18"], losses=["softmax", "focal"], seeds=[0],
                                 seeds_per_loss={"softmax": [0, 1, 2]}, schedule="onecycle")
    assert [c.name for c in configs] == ["W-resnet18-scratch-softmax-seed0", "W-resnet18-scratch-focal-seed0",
                                         "W-resnet18-scratch-softmax-seed1", "W-resnet18-scratch-softmax-seed2"]
    assert {c.stages[0].schedule for c in configs} == {"onecycle"}
    assert [c.seed for c in configs] == [0, 0, 1, 2]


def test_paper_w_grid_puts_pretrained_rows_first_and_gives_scratch_rows_their_own_seeds(tmp_path):
    weights = tmp_path / "weights.pth"
    import torch
    torch.save({"fc.weight": torch.zeros(1)}, weights)
    base = study.base_config(dataset="synthetic", image_size=32)
    configs = study.paper_w_grid(base, backbones=["resnet18"], losses=["softmax", "focal"], seeds=[0, 1],
                                 pretrained={"resnet18": str(weights)},
                                 scratch_seeds_per_loss={"focal": [0]})
    assert [c.name for c in configs] == [
        "W-resnet18-pretrained-softmax-seed0", "W-resnet18-pretrained-focal-seed0",
        "W-resnet18-pretrained-softmax-seed1", "W-resnet18-pretrained-focal-seed1",
        "W-resnet18-scratch-softmax-seed0", "W-resnet18-scratch-focal-seed0",
        "W-resnet18-scratch-softmax-seed1"]
    # without pre-trained rows the scratch rows are the grid and keep SEEDS / SEEDS_PER_LOSS
    alone = study.paper_w_grid(base, backbones=["resnet18"], losses=["focal"], seeds=[0, 1],
                               scratch_seeds_per_loss={"focal": [0]})
    assert [c.seed for c in alone] == [0, 1]
    # typos are refused, not ignored
    with pytest.raises(ValueError, match="not in the grid: focall"):
        study.paper_w_grid(base, backbones=["resnet18"], losses=["focal"], scratch_seeds_per_loss={"focall": [0]})
    with pytest.raises(ValueError, match="no backbone of the grid has pre-trained weights"):
        study.paper_w_grid(base, backbones=["resnet18"], losses=["focal"], freeze_stages=True)


def _sgd_steps(loss_name: str, loss_params: dict, lr: float, weight_decay: float,
               steps: int = 6) -> list:
    """Weights of a small float64 net after a few SGD-with-momentum steps of one loss
    setting, built the way the training loop builds them."""
    import torch
    from fer_utils.config import StageConfig
    from fer_utils.losses import build_loss
    from fer_utils.training.loop import build_optimizer

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3)).double()
    stage = StageConfig(loss=loss_name, loss_params=loss_params, lr=lr, weight_decay=weight_decay)
    criterion = build_loss(loss_name, class_counts=[10, 20, 30], num_classes=3, embedding_dim=8,
                           **loss_params)
    opt = build_optimizer(stage, net, criterion)
    g = torch.Generator().manual_seed(1)
    for _ in range(steps):
        x = torch.randn(16, 5, generator=g, dtype=torch.float64)
        y = torch.randint(0, 3, (16,), generator=g)
        loss, _ = criterion(net(x), None, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return [p.detach().clone() for p in net.parameters()]


def test_ce_control_takes_the_exact_steps_of_the_printed_focal_stage():
    import torch
    focal = {"alpha": 0.25, "gamma": 0.0}
    lr, wd = 0.05, 1e-2  # a large weight decay, so that getting it wrong shows
    focal_w = _sgd_steps("focal", focal, lr, wd)
    ctl_lr, ctl_wd = study.exact_ce_control(lr, wd, focal)
    assert (ctl_lr, ctl_wd) == (lr * 0.25, wd / 0.25)
    for a, b in zip(focal_w, _sgd_steps("softmax", {}, ctl_lr, ctl_wd)):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    # The old control (lr scaled, weight decay kept) is not the same training.
    old = _sgd_steps("softmax", {}, ctl_lr, wd)
    assert max(float((a - b).abs().max()) for a, b in zip(focal_w, old)) > 1e-6


def test_ce_control_is_refused_when_focal_is_not_a_multiple_of_ce():
    import pytest
    with pytest.raises(ValueError, match="multiple of CE"):
        study.exact_ce_control(0.01, 1e-3, {"alpha": 0.25, "gamma": 2.0})
    with pytest.raises(ValueError, match="multiple of CE"):
        study.exact_ce_control(0.01, 1e-3, {"alpha": [0.1, 0.2], "gamma": 0.0})


def test_paper_f_grid_control_stage_has_scaled_lr_and_weight_decay():
    base = study.base_config(dataset="synthetic", image_size=32, data_params={"cv": True})
    (cfg,) = study.paper_f_grid(base, strategies=["ce_then_ce_scaled_lr"], backbones=["resnet18"],
                                folds=[0], num_folds=3, stage_epochs=(4, 6), lr=0.02,
                                lr_drop_epoch=3, weight_decay=1e-3)
    s1, s2 = cfg.stages
    assert (s1.loss, s1.lr, s1.weight_decay, s1.reinit_head) == ("softmax", 0.02, 1e-3, False)
    assert (s2.loss, s2.lr, s2.weight_decay, s2.reinit_head) == ("softmax", 0.005, 4e-3, True)
    assert s2.milestones == [3] and s1.milestones == []


def test_paper_f_grid_onecycle_replaces_the_step_schedule_in_both_stages():
    """A non-paper schedule anneals each stage on its own: no milestone survives, the CE -> CE
    control keeps its scaled lr (the equivalence holds under any schedule shared by both)."""
    base = study.base_config(dataset="synthetic", image_size=32, data_params={"cv": True})
    configs = study.paper_f_grid(base, strategies=["ce_then_focal", "ce_then_ce_scaled_lr"],
                                 backbones=["resnet18"], folds=[0], num_folds=3, stage_epochs=(8, 4),
                                 lr=0.02, lr_drop_epoch=3, schedule="onecycle")
    for cfg in configs:
        assert [(s.schedule, s.milestones) for s in cfg.stages] == [("onecycle", [])] * 2
    assert [s.lr for s in configs[1].stages] == [0.02, 0.005]


#: Paper F, Table 4: the losses of each stage, in order (the control is ours).
TABLE4_STAGES = {"focal_only": ["focal"], "ce_only": ["softmax"], "joint": ["ce+focal"],
                 "focal_then_ce": ["focal", "softmax"], "ce_then_focal": ["softmax", "focal"],
                 "ce_then_ce_scaled_lr": ["softmax", "softmax"]}


def test_paper_f_grid_builds_every_strategy_as_paper_f_trains_it():
    base = study.base_config(dataset="synthetic", image_size=32, data_params={"cv": True})
    focal = {"alpha": 0.25, "gamma": 0.0}
    configs = study.paper_f_grid(base, backbones=["resnet18", "vgg16"], folds=[0, 2], num_folds=5,
                                 seeds=[0, 1], stage_epochs=(80, 70), lr=0.01, lr_drop_epoch=60,
                                 focal=focal, weight_decay=1e-3, val_from="holdout")
    assert len(configs) == len(study.STRATEGIES) * 2 * 2 * 2
    for cfg in configs:
        strategy = next(s for s in study.STRATEGIES if f"-{s}-" in cfg.name)
        stages = cfg.stages
        assert [s.loss for s in stages] == TABLE4_STAGES[strategy], cfg.name
        assert cfg.model.head == "f" and cfg.data.val_from == "holdout" and cfg.data.num_folds == 5
        assert cfg.data.fold in (0, 2) and cfg.name.endswith(f"-fold{cfg.data.fold}-seed{cfg.seed}")
        # stage 1: lr 0.01, no decay, no head re-initialisation
        s1 = stages[0]
        assert (s1.epochs, s1.lr, s1.weight_decay, s1.milestones, s1.reinit_head, s1.schedule) == \
            (80, 0.01, 1e-3, [], False, "multistep")
        for s in stages:  # focal stages carry the printed focal parameters, the others none
            assert s.loss_params == (focal if "focal" in s.loss else {})
        if len(stages) == 2:  # stage 2: from the best stage-1 model, new FC, lr / 10 after epoch 60
            s2 = stages[1]
            assert (s2.epochs, s2.milestones, s2.gamma, s2.reinit_head) == (70, [60], 0.1, True)
            control = strategy == "ce_then_ce_scaled_lr"
            assert (s2.lr, s2.weight_decay) == ((0.0025, 0.004) if control else (0.01, 1e-3))


def test_paper_w_grid_follows_paper_w_protocol(tmp_path):
    weights = tmp_path / "weights.pth"
    import torch
    torch.save({"fc.weight": torch.zeros(1)}, weights)  # the grid checks the file, not its keys
    base = study.base_config(dataset="synthetic", image_size=32)
    configs = study.paper_w_grid(base, backbones=["resnet18"], seeds=[0], epochs=20, lr=0.01,
                                 pretrained={"resnet18": str(weights)}, freeze_stages=True,
                                 weighted_reduction="weighted_mean")
    assert len(configs) == 2 * len(study.PAPER_W_LOSSES)
    for cfg in configs:
        (stage,) = cfg.stages
        pre = "-pretrained-" in cfg.name
        # stages 1-3 frozen while fine-tuning only: frozen random layers are random features
        assert cfg.model.head == "w" and cfg.model.freeze_stages == pre
        assert bool(cfg.model.pretrained) == pre
        assert stage.lr == (0.001 if pre else 0.01)  # paper W: 1e-3 pre-trained, 1e-2 scratch
        assert (stage.epochs, stage.schedule, stage.step_size, stage.gamma) == (20, "step", 10, 0.5)
        weighted = stage.loss.endswith("weighted_softmax")
        assert stage.reduction == ("weighted_mean" if weighted else "mean"), cfg.name


def test_figure_tag_keeps_grids_that_share_a_results_folder_apart():
    from fer_utils.study import figure_tag
    # the names the published figures already have (results/ckplus48/figures, results/fer2013/figures)
    assert figure_tag("fer2013", ["resnet18"], {}) == "fer2013"
    assert figure_tag("ckplus48", ["resnet18"], {"resnet18": "runs/x"}) == "ckplus48_pretrained"
    assert figure_tag("ckplus48", ["efficientnet_lite0"], {"efficientnet_lite0": "efficientnet_lite0_imagenet"}) \
        == "ckplus48_pretrained_efficientnet_lite0"
    tags = {figure_tag("fer2013", b, p) for b, p in ((["resnet18"], {}), (["resnet18_half_s1"], {}),
                                                     (["efficientnet_lite0"], {"efficientnet_lite0": "w"}))}
    assert len(tags) == 3


def _older_runs_resume_with_the_default(tmp_path, field, default, changed):
    """A run saved before the stage field ``field`` existed is the same config as ``default``
    (it resumes and is skipped as before), and not the same as ``changed``."""
    import yaml
    from fer_utils.training.loop import check_same_config
    saved = default.to_dict()
    del saved["stages"][0][field]
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(saved))
    check_same_config(tmp_path, default)
    with pytest.raises(ValueError, match="differs in: stages"):
        check_same_config(tmp_path, changed)


def test_notebook_parameter_warmup_reaches_every_stage_and_defaults_to_torchs(tmp_path):
    from fer_utils.paths import PROJECT_ROOT
    from fer_utils.pipeline import load_parameters
    from fer_utils.config import ONECYCLE_WARMUP
    from fer_utils.pipeline import notebook_defaults
    # the notebook's parameters cell must spell the literal papermill needs as the package's default
    assert notebook_defaults(PROJECT_ROOT / "notebooks/10_finetune_per_loss.ipynb")["WARMUP"] == ONECYCLE_WARMUP
    p = load_parameters(PROJECT_ROOT / "configs/fer2013_fast/10_finetune_per_loss.yaml", {})
    default = study.paper_w_configs_from_parameters(p)
    assert {c.stages[0].warmup for c in default} == {0.3}
    p["WARMUP"] = 0.1
    assert {c.stages[0].warmup for c in study.paper_w_configs_from_parameters(p)} == {0.1}
    _older_runs_resume_with_the_default(tmp_path, "warmup", default[0], study.paper_w_configs_from_parameters(p)[0])


@pytest.mark.parametrize("name, field, default, changed", [
    ("EMA", "ema", 0.0, 0.999),                    # off by default
    ("VALIDATE_LAST", "validate_last", 1.0, 0.34),  # every epoch by default
])
def test_notebook_stage_parameter_reaches_the_stage_with_the_packages_default(tmp_path, name, field,
                                                                              default, changed):
    from fer_utils.paths import PROJECT_ROOT
    from fer_utils.pipeline import load_parameters, notebook_defaults
    assert notebook_defaults(PROJECT_ROOT / "notebooks/10_finetune_per_loss.ipynb")[name] == default
    p = load_parameters(PROJECT_ROOT / "configs/fer2013_progressive_ls/10_finetune_per_loss.yaml", {})
    (plain,) = study.paper_w_configs_from_parameters(p)
    assert getattr(plain.stages[0], field) == default
    p[name] = changed
    (set_,) = study.paper_w_configs_from_parameters(p)
    assert getattr(set_.stages[0], field) == changed
    _older_runs_resume_with_the_default(tmp_path, field, plain, set_)


def test_notebook_parameter_channels_last_reaches_the_run_config_and_defaults_off():
    from fer_utils.paths import PROJECT_ROOT
    from fer_utils.pipeline import load_parameters, notebook_defaults
    for nb in ("10_finetune_per_loss", "20_two_stage_focal"):
        assert notebook_defaults(PROJECT_ROOT / f"notebooks/{nb}.ipynb")["CHANNELS_LAST"] is False
    p = load_parameters(PROJECT_ROOT / "configs/fer2013_fast/10_finetune_per_loss.yaml", {})
    # off by default, so every published run keeps its config (and resumes)
    assert {c.channels_last for c in study.paper_w_configs_from_parameters(p)} == {False}
    p["CHANNELS_LAST"] = True
    assert {c.channels_last for c in study.paper_w_configs_from_parameters(p)} == {True}
    f = load_parameters(PROJECT_ROOT / "configs/ckplus48/20_two_stage_focal.yaml", {})
    f["CHANNELS_LAST"] = True
    assert {c.channels_last for c in study.paper_f_configs_from_parameters(f)} == {True}


def test_notebook_parameter_mixup_reaches_the_run_config_defaults_off_and_older_runs_resume(tmp_path):
    import yaml
    from fer_utils.paths import PROJECT_ROOT
    from fer_utils.pipeline import load_parameters, notebook_defaults
    from fer_utils.training.loop import check_same_config
    for nb in ("10_finetune_per_loss", "20_two_stage_focal"):
        assert notebook_defaults(PROJECT_ROOT / f"notebooks/{nb}.ipynb")["MIXUP"] == 0.0
    p = load_parameters(PROJECT_ROOT / "configs/fer2013_progressive_ls/10_finetune_per_loss.yaml", {})
    (plain,) = study.paper_w_configs_from_parameters(p)
    p["MIXUP"] = 0.2
    (mixed,) = study.paper_w_configs_from_parameters(p)
    assert (plain.data.mixup, mixed.data.mixup) == (0.0, 0.2)
    f = load_parameters(PROJECT_ROOT / "configs/ckplus48/20_two_stage_focal.yaml", {})
    f["MIXUP"] = 0.2  # cross-entropy then focal: logit-only losses
    assert {c.data.mixup for c in study.paper_f_configs_from_parameters(f)} == {0.2}
    # a run saved before data.mixup existed is the plain config, not the mixed one
    saved = plain.to_dict()
    del saved["data"]["mixup"]
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(saved))
    check_same_config(tmp_path, plain)
    with pytest.raises(ValueError, match="differs in: data"):
        check_same_config(tmp_path, mixed)


def test_notebook_parameter_train_sizes_reaches_the_run_config_and_defaults_off(tmp_path):
    from fer_utils.paths import PROJECT_ROOT
    from fer_utils.pipeline import load_parameters, notebook_defaults
    assert notebook_defaults(PROJECT_ROOT / "notebooks/10_finetune_per_loss.ipynb")["TRAIN_SIZES"] == []
    p = load_parameters(PROJECT_ROOT / "configs/fer2013_progressive/10_finetune_per_loss.yaml", {})
    (cfg,) = study.paper_w_configs_from_parameters(p)
    assert cfg.stages[0].train_sizes == [32, 40, 48] and cfg.data.image_size == 48
    assert [cfg.stages[0].train_size(e) for e in (0, 17, 18, 35, 36, 53)] == [32, 32, 40, 40, 48, 48]
    p.pop("TRAIN_SIZES")
    (plain,) = study.paper_w_configs_from_parameters(p)
    assert plain.stages[0].train_sizes == []
    _older_runs_resume_with_the_default(tmp_path, "train_sizes", plain, cfg)
