"""Time series: CSV files (ETT among them) or a generated series, cut into windows batched on the device."""
