import os

import pytest

from vaecyclegan.networks import TRANSLATION_NETWORKS, build_network
from vaecyclegan.training.best_weights import BestWeightsCallback


@pytest.mark.parametrize("metric,scores,best_steps", [
    ("ssim", [0.5, 0.7, 0.6], [1, 2]),  # higher is better
    ("mae", [9.0, 7.0, 8.0], [1, 2]),  # lower is better
])
def test_keeps_the_best_by_the_chosen_metric(tiny_config, tmp_path, metric, scores, best_steps):
    networks = {n: build_network(tiny_config, n) for n in TRANSLATION_NETWORKS}
    values = iter(scores)

    def evaluate():
        value = next(values)
        return {"mri2ct": {"model": {metric: value}}, "ct2mri": {"model": {metric: value}}}

    callback = BestWeightsCallback(evaluate, networks, tiny_config, every=2, metric=metric,
                                      best_dir=str(tmp_path / "best"),
                                      history_csv=str(tmp_path / "evals.csv"))
    for batch in range(6):
        callback.on_train_batch_end(batch)
    assert [h["step"] for h in callback.history] == [2, 4, 6]
    assert [h["step"] for h in callback.history if h["best"]] == [2 * s for s in best_steps]
    assert callback.best_step == 4 and callback.best == scores[1]
    assert sorted(os.listdir(tmp_path / "best")) == sorted(
        [f"{n}_weights.h5" for n in TRANSLATION_NETWORKS] + ["config.json"])
    assert tiny_config.training["best"] == {"step": 4, "metric": metric, "score": scores[1]}


@pytest.mark.parametrize("loss,kept", [(float("nan"), False), (float("inf"), False), (1.5, True)])
def test_a_step_whose_loss_is_not_finite_is_neither_evaluated_nor_kept(tiny_config, tmp_path,
                                                                        loss, kept):
    # Training stops after such a step, but the callbacks after the
    # checkpoint's still see it; its weights must not become the best.
    networks = {n: build_network(tiny_config, n) for n in TRANSLATION_NETWORKS}
    evaluated = []

    def evaluate():
        evaluated.append(True)
        return {"mri2ct": {"model": {"ssim": 0.5}}}

    callback = BestWeightsCallback(evaluate, networks, tiny_config, every=1, metric="ssim",
                                   best_dir=str(tmp_path / "best"),
                                   history_csv=str(tmp_path / "evals.csv"))
    callback.on_train_batch_end(0, {"g_loss": loss, "d_loss": 0.7})
    assert bool(evaluated) == kept
    assert (tmp_path / "best").exists() == kept
    assert callback.best_step == (1 if kept else None)


def test_a_resumed_run_records_the_best_found_before_the_resume(tiny_config, tmp_path):
    # The resumed process never beat it, so config.json had no best step.
    networks = {n: build_network(tiny_config, n) for n in TRANSLATION_NETWORKS}
    tiny_config.training = {}
    resumed = {"best": 0.8, "best_step": 2, "step": 4,
               "history": [{"step": 2, "metric": "ssim", "score": 0.8, "best": 1}]}
    callback = BestWeightsCallback(lambda: {"mri2ct": {"model": {"ssim": 0.6}}}, networks,
                                   tiny_config, every=2, metric="ssim",
                                   best_dir=str(tmp_path / "best"),
                                   history_csv=str(tmp_path / "evals.csv"), resumed=resumed)
    callback.on_train_batch_end(4)
    callback.on_train_batch_end(5)
    assert callback.best_step == 2 and [h["step"] for h in callback.history] == [2, 6]
    assert tiny_config.training["best"] == {"step": 2, "metric": "ssim", "score": 0.8}


def test_a_save_that_fails_midway_leaves_the_previous_best_whole(tiny_config, tmp_path,
                                                                  monkeypatch):
    # best/ was written file by file: a failure after the first file left
    # one network of the new best beside three of the old one.
    import vaecyclegan.networks as networks_module
    from vaecyclegan.config import ModelConfig

    networks = {n: build_network(tiny_config, n) for n in TRANSLATION_NETWORKS}
    scores = iter([0.5, 0.7, 0.9])
    callback = BestWeightsCallback(
        lambda: {"mri2ct": {"model": {"ssim": next(scores)}}}, networks, tiny_config, every=1,
        metric="ssim", best_dir=str(tmp_path / "best"), history_csv=str(tmp_path / "evals.csv"))
    callback.on_train_batch_end(0)
    before = {name: (tmp_path / "best" / name).read_bytes()
              for name in os.listdir(tmp_path / "best")}
    for model in networks.values():  # the next best differs in every file
        for variable in model.trainable_variables:
            variable.assign(variable.value * 0.5 + 0.01)
    saved = []
    save = networks_module.save_weights_h5

    def failing_save(model, path):
        saved.append(path)
        if len(saved) == 2:
            raise OSError(28, "No space left on device")
        save(model, path)

    monkeypatch.setattr(networks_module, "save_weights_h5", failing_save)
    with pytest.raises(OSError):
        callback.on_train_batch_end(1)
    assert {name: (tmp_path / "best" / name).read_bytes()
            for name in os.listdir(tmp_path / "best")} == before
    assert ModelConfig.load(str(tmp_path / "best")).training["best"]["step"] == 1
    # Control: the same save, not failing, replaces every file.
    monkeypatch.undo()
    callback.on_train_batch_end(2)
    assert all((tmp_path / "best" / name).read_bytes() != data for name, data in before.items())


def test_a_run_stopped_between_the_renames_gets_its_best_back(tiny_config, tmp_path):
    # best/ had been moved aside as best.previous, and the new one not yet
    # moved in: a resumed run never put it back.
    networks = {n: build_network(tiny_config, n) for n in TRANSLATION_NETWORKS}
    (tmp_path / "best.previous").mkdir()
    (tmp_path / "best.previous" / "config.json").write_text("{}")
    BestWeightsCallback(lambda: {}, networks, tiny_config, every=1, metric="ssim",
                        best_dir=str(tmp_path / "best"), history_csv=str(tmp_path / "evals.csv"))
    assert (tmp_path / "best" / "config.json").read_text() == "{}"
    assert not (tmp_path / "best.previous").exists()
