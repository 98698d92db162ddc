"""Extraction (the heavy stage: torch, open_clip, captum; BLIP / BEiT-3 towers): forward passes over
images into feature packs -- ground truth, conductance, text features, class statistics, model labels."""
