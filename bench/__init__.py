"""Tollgate's benchmark: `make bench` (or `python -m bench`). See bench/README.md."""
