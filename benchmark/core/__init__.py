"""The evaluation core: protocols (zoo x datasets, seeds, metrics), the train/target views a
selector sees, the leave-one-dataset-out harness, the metrics, the results table with
provenance, and the conformance check of selectors.
"""
