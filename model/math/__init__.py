"""The derivation as small pure functions over arrays (numpy and scipy only).

softmax.py: steps 1-3 and the one pointwise kernel (cross-entropy and G = w (P - Y));
linear.py: step 4 over a block of rows, the one reduction of blocks' sums, the penalty and the
standardization fold beside its chain rule; lipschitz.py: the step-size bound;
scaling.py: weighted column means and scales.
"""
