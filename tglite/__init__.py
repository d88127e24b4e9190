"""tglite: the front door of the course (the `tglite` console script).

It is the only package that knows every layer; the layers themselves never import it.
"""
