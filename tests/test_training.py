import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from fedasync_lib import AsyncClient, AsyncConfig, AsyncDataset, AsyncModel, LinearModel
from fedasync_lib.core import seeding
from fedasync_lib.core.data import make_federated_data
from fedasync_lib.core.model_zoo import DigitsCNN, LogisticRegression
from fedasync_lib.core.training import (AllSamples, LazyTrainer, LocalJob, local_trainer,
                                        minibatch_schedule)
from fedasync_lib.core.training_dense import DenseTrainer
from fedasync_lib.core.training_func import FuncTrainer

CFG = AsyncConfig(learning_rate=0.05, batch_size=16, local_epochs=2)


def datasets(sizes, dim=32):
    return [AsyncDataset(n=n, dim=dim, classes=10, seed=100 + i) for i, n in enumerate(sizes)]


def to_numpy(value):
    return value.detach().numpy().copy() if torch.is_tensor(value) else np.array(value)


def as_tensors(state):
    return {k: torch.as_tensor(to_numpy(v)) for k, v in state.items()}


def assert_states_close(a, b, rtol=1e-5, atol=1e-6):
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(torch.as_tensor(to_numpy(a[k])), torch.as_tensor(to_numpy(b[k])),
                                   rtol=rtol, atol=atol, msg=f"parameter {k}")


def squared_error(out, y):
    """||out - e_y||^2 / 2 per sample, in torch: the reference for the built-in loss."""
    return 0.5 * ((out - F.one_hot(y, out.shape[-1]).to(out.dtype)) ** 2).sum(-1)


def sgd_alone(model, data, job_id, config, loss=F.cross_entropy):
    """The reference: one job trained alone with torch.optim.SGD and autograd, on the
    minibatches of the job's shuffle stream; ``loss`` is a mean over the minibatch."""
    idx, w = minibatch_schedule(len(data), config.batch_size, config.local_epochs,
                                seeding.rng(config.seed, "local-shuffle", job_id))
    x, y = torch.as_tensor(data.x), torch.as_tensor(data.y)
    opt = torch.optim.SGD(model.parameters(), lr=config.learning_rate)
    for rows, weights in zip(idx, w):
        rows = torch.from_numpy(rows[weights > 0])
        opt.zero_grad()
        loss(model(x[rows]), y[rows]).backward()
        opt.step()
    return {k: v.detach() for k, v in model.state_dict().items()}


BUILT_IN = {
    "mlp": (lambda: AsyncModel(CFG), F.cross_entropy),
    "logistic": (lambda: LinearModel(32, 10, seed=3), F.cross_entropy),
    "least-squares": (lambda: LinearModel(32, 10, seed=3, loss="squared_error"),
                      lambda out, y: squared_error(out, y).mean()),
}


def test_schedule_visits_each_sample_once_per_epoch_and_averages_each_step():
    idx, w = minibatch_schedule(37, 8, 3, np.random.default_rng(0))
    assert idx.shape == w.shape == (3 * 5, 8)
    for e in range(3):
        rows, weights = idx[5 * e: 5 * (e + 1)], w[5 * e: 5 * (e + 1)]
        assert sorted(rows[weights > 0].tolist()) == list(range(37))
    np.testing.assert_allclose(w.sum(axis=1), 1.0, rtol=1e-6)
    assert (w[4] > 0).sum() == 37 - 32  # the last, smaller batch


@pytest.mark.parametrize("name", BUILT_IN)
def test_each_built_in_model_matches_torch_optim_sgd_with_autograd(name):
    """A job of a built-in model (numpy, gradients written out) follows torch.optim.SGD with
    autograd on the same model as a torch module, from the same state and minibatches,
    to float32 tolerance; the trained state keeps the names of the module's layers."""
    make, loss = BUILT_IN[name]
    data = datasets([45])
    model = make()
    job = LocalJob(job_id=3, client_id=0, base_version=0, base_state=model.state())
    (ours, _), = DenseTrainer(model, data, CFG).train([job])
    reference = sgd_alone(model.to_module(), data[0], 3, CFG, loss=loss)
    assert [tuple(v.shape) for v in ours.values()] == [tuple(v.shape) for v in reference.values()]
    assert_states_close(dict(zip(reference, ours.values())), reference)


def test_numpy_path_equals_torch_func_path_on_the_built_in_mlp():
    data = datasets([40, 17, 64, 33, 5])  # unequal sizes: the batch is padded
    model = AsyncModel(CFG)
    base = model.state()
    other = {k: v + 0.01 for k, v in base.items()}
    jobs = [LocalJob(i, i % 5, 0, base if i % 2 else other) for i in range(7)]
    fast = DenseTrainer(model, data, CFG).train(jobs)
    module = model.to_module()
    names = list(module.state_dict())
    generic = FuncTrainer(module, data, CFG).train(
        [LocalJob(j.job_id, j.client_id, 0, dict(zip(names, as_tensors(j.base_state).values())))
         for j in jobs])
    for (a, loss_a), (b, loss_b) in zip(fast, generic):
        assert_states_close(dict(zip(names, a.values())), b)
        assert loss_a == pytest.approx(loss_b, rel=1e-5)


def cnn_data(sizes):
    data = make_federated_data(AsyncConfig(dataset="digits", num_clients=40))
    return [AsyncDataset.from_arrays(d.x[:n], d.y[:n]) for d, n in zip(data.clients, sizes)]


@pytest.mark.parametrize("make_model", [lambda: DigitsCNN(seed=1), lambda: LogisticRegression(seed=1)],
                         ids=["cnn", "logistic"])
def test_torch_func_batch_equals_each_job_alone_with_torch_optim_sgd(make_model):
    data = cnn_data([40, 17, 33])
    cfg = CFG.replace(dataset="digits", learning_rate=0.1)
    model = make_model()
    base = {k: v.detach().clone() for k, v in model.state_dict().items()}
    shifted = {k: v + 0.02 for k, v in base.items()}
    jobs = [LocalJob(i, i % 3, 0, base if i % 2 else shifted) for i in range(5)]
    together = FuncTrainer(model, data, cfg).train(jobs)
    for job, (state, loss) in zip(jobs, together):
        alone = make_model()
        alone.load_state_dict(job.base_state)
        expected = sgd_alone(alone, data[job.client_id], job.job_id, cfg)
        assert_states_close(state, expected)
        with torch.no_grad():
            own = F.cross_entropy(alone(torch.as_tensor(data[job.client_id].x)),
                                  torch.as_tensor(data[job.client_id].y)).item()
        assert loss == pytest.approx(own, rel=1e-4)
    assert all(torch.equal(base[k], model.state_dict()[k]) for k in base)  # module untouched


@pytest.mark.parametrize("trainer", [lambda d, c: DenseTrainer(AsyncModel(c), d, c),
                                     lambda d, c: FuncTrainer(LogisticRegression(32), d, c)],
                         ids=["numpy", "torch.func"])
def test_batched_training_equals_training_each_job_alone(trainer):
    data = datasets([40, 17, 64, 33])
    train = trainer(data, CFG)
    base = (AsyncModel(CFG).state() if isinstance(train, DenseTrainer)
            else LogisticRegression(32).state_dict())
    other = {k: v + 0.01 for k, v in base.items()}
    jobs = [LocalJob(i, i % 4, 0, base if i % 2 else other) for i in range(6)]
    together = train.train(jobs)
    for job, (state, loss) in zip(jobs, together):
        (alone, alone_loss), = train.train([job])
        assert_states_close(state, alone, rtol=0, atol=1e-6)
        assert loss == pytest.approx(alone_loss, rel=1e-5)


def test_cutting_a_large_batch_into_chunks_changes_nothing():
    data = datasets([30, 20, 25])
    base = AsyncModel(CFG).state()
    jobs = [LocalJob(i, i % 3, 0, base) for i in range(7)]
    whole = DenseTrainer(AsyncModel(CFG), data, CFG).train(jobs)
    chunked = DenseTrainer(AsyncModel(CFG), data, CFG)
    chunked.max_batch = 3
    for (a, la), (b, lb) in zip(whole, chunked.train(jobs)):
        assert_states_close(a, b, rtol=0, atol=1e-6)
        assert la == pytest.approx(lb, rel=1e-6)


def test_each_trained_state_owns_its_memory_and_is_read_only():
    data = datasets([30, 20])
    base = AsyncModel(CFG).state()
    outs = DenseTrainer(AsyncModel(CFG), data, CFG).train(
        [LocalJob(0, 0, 0, base), LocalJob(1, 1, 0, base)])
    arrays = [a for state, _ in outs for a in state.values()]
    assert all(a.base is None and a.flags.c_contiguous and not a.flags.writeable for a in arrays)
    with pytest.raises(ValueError, match="read-only"):
        arrays[0] += 1


def test_training_learns_and_reports_loss_on_own_data():
    data = datasets([200])
    model = AsyncModel(CFG)
    (state, loss), = DenseTrainer(model, data, CFG.replace(local_epochs=5)).train(
        [LocalJob(0, 0, 0, model.state())])
    x, y = torch.as_tensor(data[0].x), torch.as_tensor(data[0].y)
    module = model.to_module()
    before = F.cross_entropy(module(x), y).item()
    module.load_state_dict(dict(zip(module.state_dict(), as_tensors(state).values())))
    after = F.cross_entropy(module(x), y).item()
    assert after < before
    assert loss == pytest.approx(after, rel=1e-4)


@pytest.mark.parametrize("name", BUILT_IN)
def test_each_job_reports_its_loss_on_its_own_clients_data(name):
    """Clients of unequal sizes: each loss is the trained model's mean loss on that
    client's samples alone (padding left out), the built-in model's own loss."""
    make, _ = BUILT_IN[name]
    data = datasets([40, 17, 5])
    model = make()
    jobs = [LocalJob(i, i, 0, model.state()) for i in range(3)]
    for job, (state, loss) in zip(jobs, DenseTrainer(model, data, CFG).train(jobs)):
        module = model.to_module()
        module.load_state_dict(dict(zip(module.state_dict(), as_tensors(state).values())))
        out = module(torch.as_tensor(data[job.client_id].x))
        y = torch.as_tensor(data[job.client_id].y)
        own = F.cross_entropy(out, y) if model.loss == "cross_entropy" else squared_error(out, y).mean()
        assert loss == pytest.approx(own.item(), rel=1e-5)


def test_torch_func_states_are_ordinary_tensors():
    """The states are ordinary tensors (not inference-mode ones) that autograd can train further."""
    data = datasets([40, 17])
    model = LogisticRegression(32)
    jobs = [LocalJob(i, i, 0, model.state_dict()) for i in range(2)]
    for state, _ in FuncTrainer(model, data, CFG).train(jobs):
        assert not any(t.is_inference() for t in state.values())
        model.load_state_dict(state)
        F.cross_entropy(model(torch.as_tensor(data[0].x)), torch.as_tensor(data[0].y)).backward()
        assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("trainer", [lambda d, c: DenseTrainer(AsyncModel(c), d, c),
                                     lambda d, c: FuncTrainer(AsyncModel(c).to_module(), d, c)],
                         ids=["numpy", "torch.func"])
def test_base_state_is_never_modified(trainer):
    data = datasets([30])
    train = trainer(data, CFG)
    base = (AsyncModel(CFG).state() if isinstance(train, DenseTrainer)
            else {k: v.clone() for k, v in train.model.state_dict().items()})
    copy = {k: to_numpy(v) for k, v in base.items()}
    train.train([LocalJob(0, 0, 0, base)])
    assert all(np.array_equal(to_numpy(base[k]), copy[k]) for k in base)


def test_client_train_equals_simulator_job():
    data = datasets([50])
    state = AsyncModel(CFG).state()
    update = AsyncClient(7, data[0], CFG).train(state, version=4, job_id=11)
    (expected, _), = DenseTrainer(AsyncModel(CFG), data, CFG).train([LocalJob(11, 0, 4, state)])
    assert update.client_id == 7 and update.base_version == 4 and update.num_samples == 50
    assert all(np.array_equal(update.state_dict[k], expected[k]) for k in expected)
    cnn = DigitsCNN(seed=3)
    digits = cnn_data([20])
    update = AsyncClient(0, digits[0], CFG).train(cnn.state_dict(), 0, job_id=2, model=cnn)
    (expected, _), = FuncTrainer(cnn, digits, CFG).train([LocalJob(2, 0, 0, cnn.state_dict())])
    assert_states_close(update.state_dict, expected, rtol=0, atol=0)


def test_lazy_trainer_trains_pending_jobs_together_only_when_asked():
    data = datasets([20, 20, 20])
    base = AsyncModel(CFG).state()
    trainer = LazyTrainer(DenseTrainer(AsyncModel(CFG), data, CFG))
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


def test_all_samples_are_the_split_itself_not_a_copy():
    data = make_federated_data(AsyncConfig(num_clients=5, concurrency=5))
    joined = AllSamples.of(data.clients)
    assert np.shares_memory(joined.x, data.clients[0].x) and len(joined.x) == sum(data.sizes)
    for c, d in enumerate(data.clients):
        start = joined.starts[c]
        assert np.array_equal(joined.x[start: start + len(d)], d.x)
    own = datasets([3, 4])  # separate arrays: joined by a copy
    joined = AllSamples.of(own)
    assert np.array_equal(joined.x, np.concatenate([own[0].x, own[1].x]))
    assert np.array_equal(joined.y[3:], own[1].y) and joined.starts.tolist() == [0, 3]


# --- choosing a path, and what each refuses ---------------------------------------------
def test_auto_picks_numpy_for_a_built_in_model_and_torch_func_for_a_module():
    data = datasets([10])
    assert isinstance(local_trainer(None, data, CFG), DenseTrainer)
    assert isinstance(local_trainer(AsyncModel(CFG), data, CFG), DenseTrainer)
    assert isinstance(local_trainer(LinearModel(32, 10), data, CFG, loss="squared_error"),
                      DenseTrainer)
    assert isinstance(local_trainer(AsyncModel(CFG).to_module(), data, CFG), FuncTrainer)
    assert isinstance(local_trainer(LogisticRegression(32), data, CFG), FuncTrainer)


def test_bad_training_choices_say_what_is_wrong():
    data = datasets([10])
    with pytest.raises(ValueError, match=r"training='fast' is invalid: expected one of 'auto'"):
        local_trainer(None, data, CFG, training="fast")
    with pytest.raises(ValueError, match="built-in models only, not LogisticRegression"):
        local_trainer(LogisticRegression(32), data, CFG, training="hand-written")
    with pytest.raises(ValueError, match="expected the name of a built-in loss"):
        local_trainer(None, data, CFG, loss=nn.CrossEntropyLoss(reduction="none"))
    with pytest.raises(ValueError, match="loss='hinge' is invalid for a built-in model"):
        local_trainer(None, data, CFG, loss="hinge")
    with pytest.raises(ValueError, match=r"client 0's x has shape \(10, 32\), but the built-in "
                                         r"AsyncModel takes \(n, 64\)"):
        DenseTrainer(AsyncModel(CFG.replace(dataset="digits")), data, CFG.replace(dataset="digits"))


class WithBuffer(nn.Module):
    def __init__(self, dtype):
        super().__init__()
        self.linear = nn.Linear(32, 10)
        self.register_buffer("count", torch.zeros(1, dtype=dtype))

    def forward(self, x):
        return self.linear(x)


class Tied(nn.Module):
    def __init__(self):
        super().__init__()
        self.first = nn.Linear(32, 32)
        self.second = nn.Linear(32, 32)
        self.second.weight = self.first.weight
        self.out = nn.Linear(32, 10)

    def forward(self, x):
        return self.out(self.second(self.first(x)))


@pytest.mark.parametrize("model, message", [
    (nn.Sequential(nn.Linear(32, 16), nn.Dropout(0.5), nn.Linear(16, 10)),
     r"model layer '1' \(Dropout\) has dropout p=0.5"),
    (nn.Sequential(nn.Linear(32, 16), nn.BatchNorm1d(16), nn.Linear(16, 10)),
     r"model layer '1' \(BatchNorm1d\) is a BatchNorm layer"),
    (WithBuffer(torch.long), r"model state entry 'count' has dtype torch.int64"),
    (nn.ReLU(), "model ReLU has no parameters to train"),
    (Tied(), r"model parameter 'second.weight' is shared with another layer \(tied weights\)"),
    ("not a model", "model='not a model' is invalid: expected a torch.nn.Module"),
])
def test_torch_func_path_refuses_what_it_cannot_batch(model, message):
    with pytest.raises(ValueError, match=message):
        FuncTrainer(model, datasets([10]), CFG)


def test_a_float_buffer_is_carried_along_unchanged():
    model = WithBuffer(torch.float32)
    (state, _), = FuncTrainer(model, datasets([10]), CFG).train(
        [LocalJob(0, 0, 0, {k: v + 1 for k, v in model.state_dict().items()})])
    assert torch.equal(state["count"], torch.ones(1))


@pytest.mark.parametrize("loss, message", [
    (nn.CrossEntropyLoss(), r"has reduction='mean': expected reduction='none'"),
    (lambda out, y: F.cross_entropy(out, y).sum(), r"returned \(\) for a minibatch of 2: "
                                                    r"expected one loss per sample, shape \(2,\)"),
    (lambda out, y: "x", r"returned str for a minibatch of 2"),
    (42, "loss=42 is invalid: expected a callable"),
])
def test_a_loss_must_give_one_value_per_sample(loss, message):
    with pytest.raises(ValueError, match=message):
        FuncTrainer(LogisticRegression(32), datasets([10]), CFG, loss=loss)


def test_a_real_torch_nn_loss_is_used():
    """Label smoothing changes the gradient: the run really trains with the loss given."""
    data = datasets([40])
    model = LogisticRegression(32)
    job = LocalJob(0, 0, 0, model.state_dict())
    smooth = nn.CrossEntropyLoss(reduction="none", label_smoothing=0.2)
    (plain, _), = FuncTrainer(model, data, CFG).train([job])
    (smoothed, _), = FuncTrainer(model, data, CFG, loss=smooth).train([job])
    reference = LogisticRegression(32)
    expected = sgd_alone(reference, data[0], 0, CFG,
                         loss=nn.CrossEntropyLoss(label_smoothing=0.2))
    assert_states_close(smoothed, expected)
    assert not torch.allclose(plain["linear.weight"], smoothed["linear.weight"])


@pytest.mark.parametrize("words", [(42, 0), (42, 7, 3), (0, 5), (2**32 - 1, 2**31), (2**40, 3), (42,)])
def test_named_streams_are_numpys_streams_for_the_listed_seed_words(words):
    """seeding.rng may hand numpy the seed words as a uint32 array (faster); the stream
    must be the one of the plain list [seed, crc32(name), *more], for any size of word."""
    seed, *more = words
    ours = seeding.rng(seed, "local-shuffle", *more).integers(0, 2**62, size=8)
    listed = np.random.default_rng([seed, seeding._key("local-shuffle"), *more]).integers(0, 2**62, size=8)
    assert (ours == listed).all()
