"""The segment engine's pure core: the metric registry, rule documents and time windows."""
