"""Before-and-after reports of runs and evaluations, as static HTML pages."""
