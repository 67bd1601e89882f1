"""AlignFlow experiments (registry keys ``alignflow.<module>``): paired translation (Table 1,
3) and unsupervised domain adaptation (Table 2)."""
