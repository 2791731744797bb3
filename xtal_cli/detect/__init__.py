"""One-target phase detectors: synthetic mixtures, a small 1D CNN, training and screening."""
