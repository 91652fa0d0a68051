"""Slow, obviously correct loop references of the three cells (forward only).

Every product is a Python loop over scalars, written straight from the equations,
with nothing shared with rnnrec's code. They are oracles for the vectorised code,
too slow for anything but tiny shapes.
"""

import math


def _sigmoid(a):
    return 1.0 / (1.0 + math.exp(-a))


def _affine(W, v, b, row):
    """Return sum_k W[row, k] v[k] + b[row]."""
    return sum(W[row][k] * v[k] for k in range(len(v))) + b[row]


def loop_forward(cell, x, h0, params, c0=None, reset=None, **options):
    """Run one cell over x (T, B, D) with scalar loops; return h (T, B, H) as lists.

    cell is "rnn", "lstm", "gru-torch" or "gru-cho"; options holds the RNN's
    nonlinearity. Returns (h, c) for the LSTM, h otherwise.
    """
    W_ih, W_hh = params["weight_ih"].tolist(), params["weight_hh"].tolist()
    b_ih, b_hh = params["bias_ih"].tolist(), params["bias_hh"].tolist()
    T, B = len(x), len(x[0])
    H = len(h0[0])
    hs = [[None] * B for _ in range(T)]
    cs = [[None] * B for _ in range(T)]
    for b in range(B):
        h = list(h0[b])
        c = list(c0[b]) if c0 is not None else None
        for t in range(T):
            if reset is not None and reset[t][b]:
                h = [0.0] * H
                c = [0.0] * H if c is not None else None
            xt = list(x[t][b])
            if cell == "rnn":
                a = [
                    _affine(W_ih, xt, b_ih, j) + _affine(W_hh, h, b_hh, j)
                    for j in range(H)
                ]
                if options.get("nonlinearity", "tanh") == "tanh":
                    h = [math.tanh(v) for v in a]
                else:
                    h = [max(v, 0.0) for v in a]
            elif cell == "lstm":
                a = [
                    _affine(W_ih, xt, b_ih, j) + _affine(W_hh, h, b_hh, j)
                    for j in range(4 * H)
                ]
                i = [_sigmoid(a[j]) for j in range(H)]
                f = [_sigmoid(a[H + j]) for j in range(H)]
                g = [math.tanh(a[2 * H + j]) for j in range(H)]
                o = [_sigmoid(a[3 * H + j]) for j in range(H)]
                c = [f[j] * c[j] + i[j] * g[j] for j in range(H)]
                h = [o[j] * math.tanh(c[j]) for j in range(H)]
            else:
                ax = [_affine(W_ih, xt, b_ih, j) for j in range(3 * H)]
                r = [_sigmoid(ax[j] + _affine(W_hh, h, b_hh, j)) for j in range(H)]
                z = [
                    _sigmoid(ax[H + j] + _affine(W_hh, h, b_hh, H + j))
                    for j in range(H)
                ]
                if cell == "gru-torch":
                    n = [
                        math.tanh(
                            ax[2 * H + j] + r[j] * _affine(W_hh, h, b_hh, 2 * H + j)
                        )
                        for j in range(H)
                    ]
                else:
                    rh = [r[k] * h[k] for k in range(H)]
                    n = [
                        math.tanh(ax[2 * H + j] + _affine(W_hh, rh, b_hh, 2 * H + j))
                        for j in range(H)
                    ]
                h = [(1 - z[j]) * n[j] + z[j] * h[j] for j in range(H)]
            hs[t][b] = h
            cs[t][b] = c
    return (hs, cs) if cell == "lstm" else hs
