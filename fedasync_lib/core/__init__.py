"""The simulator: config, data, model, local training, clients, the one event loop
(:mod:`~fedasync_lib.core.server`), the policy interface algorithms plug into
(:mod:`~fedasync_lib.core.policy`), and the drivers that supply time
(:mod:`~fedasync_lib.core.driver`, :mod:`~fedasync_lib.core.virtual_clock`)."""
