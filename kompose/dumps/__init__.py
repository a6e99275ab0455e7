"""Dump files: names, formats, completeness, manifests, compression, retention."""
