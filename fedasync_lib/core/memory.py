"""How much memory a run will ask for, estimated before it starts, so that a config
that cannot fit is refused with a plain sentence instead of failing deep inside
torch's allocator.

The estimate counts the large tensors only, in float32:

* the data: the synthetic pool of ``num_clients * samples_per_client`` samples,
  held twice for a moment while it is split (:func:`~fedasync_lib.core.data.split_rows`),
  and the test set;
* the models: every job in flight has a trained state, and the server keeps a
  few versions, so about ``2 * concurrency + 4`` copies of the parameters;
* local training: the minibatches of up to 128 jobs trained together
  (:class:`~fedasync_lib.core.training.LocalTrainer`), ``steps * jobs *
  batch * sample size``, about three times over (inputs, their padded copy,
  and labels or gradients).

It is an estimate, good to a factor of about two; it is there to catch configs
that are off by orders of magnitude (a terabyte asked of a laptop).
"""

from __future__ import annotations

import math
import os
from typing import Dict, Optional

from .config import AsyncConfig

FLOAT = 4  # bytes of a float32


def machine_memory() -> Optional[int]:
    """Bytes of physical memory of this machine, or None where the system does not say."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, OSError, ValueError):
        return None


def _gib(n: float) -> str:
    return f"{n / 2**30:,.1f} GiB" if n >= 2**30 else f"{n / 2**20:,.0f} MiB"


def check_fits(parts: Dict[str, float], advice: str, limit: Optional[int] = None) -> None:
    """Raise ``ValueError`` when the ``parts`` (name -> bytes) add up to more than
    ``limit`` (default: this machine's memory), naming each part and ``advice``."""
    limit = machine_memory() if limit is None else limit
    total = sum(parts.values())
    if limit is not None and total > limit:
        detail = ", ".join(f"{name} {_gib(b)}" for name, b in parts.items() if b >= 2**20)
        raise ValueError(f"this config needs about {_gib(total)} of memory ({detail}), more "
                         f"than this machine's {_gib(limit)}: {advice}")


def data_bytes(config: AsyncConfig) -> Dict[str, float]:
    """The synthetic task's data (the digits are a fixed 1,797 images, a few hundred KB)."""
    if config.dataset == "digits":
        return {"data": 1797 * 64 * FLOAT * 3}
    row = config.input_dim * FLOAT + 8  # features and an int64 label
    pool = config.num_clients * config.samples_per_client * row
    return {"training data": 2.0 * pool, "test data": config.test_size * row}


def check_data_fits(config: AsyncConfig, limit: Optional[int] = None) -> None:
    check_fits(data_bytes(config), "lower num_clients, samples_per_client, input_dim or "
               "test_size", limit)


def training_bytes(config: AsyncConfig, num_params: int, sample_numel: int,
                   largest_client: int) -> Dict[str, float]:
    """The models in flight and one batch of local training."""
    batch = min(config.batch_size, largest_client)
    steps = config.local_epochs * math.ceil(largest_client / batch)
    jobs = min(config.concurrency, 128)
    minibatches = 3.0 * steps * jobs * batch * (sample_numel + config.num_classes) * FLOAT
    return {"models": (2 * config.concurrency + 4) * num_params * FLOAT,
            "local training": minibatches}


def check_training_fits(config: AsyncConfig, num_params: int, sample_numel: int,
                        largest_client: int, limit: Optional[int] = None) -> None:
    check_fits(training_bytes(config, num_params, sample_numel, largest_client),
               "lower concurrency, the model's size (hidden_dim), local_epochs or the "
               "clients' data", limit)
