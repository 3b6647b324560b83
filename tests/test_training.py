import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fedasync_lib import AsyncClient, AsyncConfig, AsyncDataset, AsyncModel
from fedasync_lib.core import seeding
from fedasync_lib.core.training import LazyTrainer, LocalJob, minibatch_schedule, train_jobs

CFG = AsyncConfig()
KW = dict(seed=CFG.seed, learning_rate=0.05, batch_size=16, local_epochs=2, num_classes=10)


def datasets(sizes):
    return [AsyncDataset(n=n, dim=32, classes=10, seed=100 + i) for i, n in enumerate(sizes)]


def test_schedule_visits_each_sample_once_per_epoch_and_averages_each_step():
    idx, w = minibatch_schedule(37, 8, 3, np.random.default_rng(0))
    assert idx.shape == w.shape == (3 * 5, 8)
    for e in range(3):
        rows, weights = idx[5 * e: 5 * (e + 1)], w[5 * e: 5 * (e + 1)]
        assert sorted(rows[weights > 0].tolist()) == list(range(37))
    np.testing.assert_allclose(w.sum(axis=1), 1.0, rtol=1e-6)
    assert (w[4] > 0).sum() == 37 - 32  # the last, smaller batch


def test_local_sgd_matches_pytorch_autograd():
    """The hand-written gradients give the same trajectory as torch.optim.SGD."""
    data = datasets([45])
    model = AsyncModel(CFG)
    job = LocalJob(job_id=3, client_id=0, base_version=0, base_state=model.state())
    (ours, _), = train_jobs([job], data, **KW)

    idx, w = minibatch_schedule(45, KW["batch_size"], KW["local_epochs"],
                                seeding.rng(CFG.seed, "local-shuffle", 3))
    opt = torch.optim.SGD(model.parameters(), lr=KW["learning_rate"])
    for rows, weights in zip(idx, w):
        rows = torch.from_numpy(rows[weights > 0])
        opt.zero_grad()
        F.cross_entropy(model(data[0].x[rows]), data[0].y[rows]).backward()
        opt.step()
    for name, value in model.state_dict().items():
        torch.testing.assert_close(ours[name], value, rtol=1e-5, atol=1e-6)


def test_batched_training_equals_training_each_job_alone():
    data = datasets([40, 17, 64, 33])  # unequal sizes: the batch is padded
    base = AsyncModel(CFG).state()
    other = {k: v + 0.01 for k, v in base.items()}
    jobs = [LocalJob(i, i % 4, 0, base if i % 2 else other) for i in range(6)]
    together = train_jobs(jobs, data, **KW)
    for job, (state, loss) in zip(jobs, together):
        (alone, alone_loss), = train_jobs([job], data, **KW)
        for k in state:
            torch.testing.assert_close(state[k], alone[k], rtol=0, atol=1e-6)
        assert loss == pytest.approx(alone_loss, rel=1e-5)


def test_training_learns_and_reports_loss_on_own_data():
    data = datasets([200])
    model = AsyncModel(CFG)
    job = LocalJob(0, 0, 0, model.state())
    (state, loss), = train_jobs([job], data, **{**KW, "local_epochs": 5})
    before = F.cross_entropy(model(data[0].x), data[0].y).item()
    model.load_state_dict(state)
    after = F.cross_entropy(model(data[0].x), data[0].y).item()
    assert after < before
    assert loss == pytest.approx(after, rel=1e-4)


def test_base_state_is_never_modified():
    data = datasets([30])
    base = AsyncModel(CFG).state()
    copy = {k: v.clone() for k, v in base.items()}
    train_jobs([LocalJob(0, 0, 0, base)], data, **KW)
    assert all(torch.equal(base[k], copy[k]) for k in base)


def test_client_train_equals_simulator_job():
    data = datasets([50])
    cfg = CFG.replace(learning_rate=0.05, batch_size=16)
    state = AsyncModel(cfg).state()
    update = AsyncClient(7, data[0], cfg).train(state, version=4, job_id=11)
    (expected, _), = train_jobs([LocalJob(11, 0, 4, state)], data, seed=cfg.seed,
                                learning_rate=0.05, batch_size=16, local_epochs=2, num_classes=10)
    assert update.client_id == 7 and update.base_version == 4 and update.num_samples == 50
    assert all(torch.equal(update.state_dict[k], expected[k]) for k in expected)


def test_lazy_trainer_trains_pending_jobs_together_only_when_asked():
    data = datasets([20, 20, 20])
    base = AsyncModel(CFG).state()
    trainer = LazyTrainer(data, **{k: v for k, v in KW.items()})
    jobs = [LocalJob(i, i, 0, base) for i in range(3)]
    for j in jobs[:2]:
        trainer.submit(j)
    assert trainer.batches == []
    trainer.result(jobs[1])
    trainer.submit(jobs[2])
    trainer.result(jobs[0])  # already trained with job 1
    trainer.result(jobs[2])
    assert trainer.batches == [2, 1]
    with pytest.raises(KeyError):
        trainer.result(LocalJob(99, 0, 0, base))
