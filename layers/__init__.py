"""Layer recipes, one module per layer kind; installed as `ociasm.layers`."""
