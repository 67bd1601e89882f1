"""LRMF experiments (one module per registry key ``lrmf.<module>``): setup 1 alignment, the
baseline comparison, digit embeddings (setup 3) and the vanishing gradient (Example 2.2)."""
