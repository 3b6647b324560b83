"""The teaching layer: the data behind each demo (:mod:`~fedasync_lib.teaching.lesson`,
:mod:`~fedasync_lib.teaching.experiments`), its plots and their style, the sliders,
the exercise checkers, and the figure generator. Nothing here changes a run:
it only asks the simulator for runs and draws them."""
