"""Reproducible studies: each runs seeds 1..N and writes a CSV, a Markdown table and a plot."""
