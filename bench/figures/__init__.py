"""One module per figure; each has ``NAME`` and ``run(ctx) -> FigureResult``."""
