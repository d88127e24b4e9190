"""Differentiable primitives, one small `Function` per op, grouped by kind.

elementwise  unary and binary math with NumPy broadcasting
reduce       sum, max, logsumexp, softmax, log_softmax
movement     reshape, permute, expand, concatenate, pad, tril, masked_fill, casts
indexing     __getitem__ and its scatter-add backward, take_along_axis
linalg       matmul
fused        cross-entropy (log-softmax + NLL in one pass)
"""
