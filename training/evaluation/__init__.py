"""The evaluation harness of DESIGN §7: measures, leakage probes, evaluation sets and reports."""
