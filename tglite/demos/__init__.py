"""Lecture demos. Each module registers its tour steps with `tglite.tour.register`."""
