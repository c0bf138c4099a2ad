//! Image and playability metrics.
