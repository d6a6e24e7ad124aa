"""The build engine: queue, workers, progress, logs, cancellation, recovery."""
