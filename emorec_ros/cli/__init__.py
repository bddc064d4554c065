"""Command-line entry points: training, evaluation, demo and set-up helpers."""
