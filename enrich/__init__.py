"""Enrich stage: pricing, ownership attribution, run stitching."""
