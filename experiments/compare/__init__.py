"""Comparisons: a grid of variants x scenarios x seeds trained as ordinary run folders, each final
model evaluated under named conditions (transfer, noise, traffic), and a report of the results."""
