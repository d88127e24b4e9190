"""tglite: the front door of the course (the `tglite` console script).

It is the only package that knows every layer; the layers themselves never import it.
    tglite.cli        the argument parser, built from the command modules in `cli.COMMANDS`
    tglite.commands   one module per subcommand (info, gradcheck-demo, tour, ...)
    tglite.tour       the tour: runs the steps registered by the modules in `tour.STEP_MODULES`
    tglite.demos      the lecture demos themselves
    tglite.files      save_figure: a matplotlib figure as a PNG, atomically (nn.files.atomic_write)
    tglite.extras     a figure and a progress bar, imported lazily (tinygrad_lite.extras.require)
"""
