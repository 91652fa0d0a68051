"""A PyTorch twin of rnnrec's session recommender, for the benchmarks.

This module is not part of the package: it exists so that `bench_train.py` and
`bench_eval.py` time rnnrec against an equal computation written the ordinary
PyTorch way, with autograd instead of hand-written gradients. One training step
on a block of T
steps of B session-parallel slots does what `SessionRecommender._train_block`
does::

    x      = E[items]                      (T, B, D)   sparse embedding lookup
    h^l    = GRU_l(h^{l-1}; reset)         (T, B, H_l) PyTorch's GRU equations
    h^l    = dropout(h^l)                              inverted dropout
    h_v    = h^L at the valid positions    (N, H)
    cand   = [targets; negatives]          (C,)        C = N + S
    R      = h_v W_y[cand]^T + b_y[cand]   (N, C)      sampled scores
    loss   = sum_i L_i(act(R)) / batch_size            row i's target is column i

then ``loss.backward()`` and one step of GRU4Rec's Adagrad with momentum, which
updates only the rows of the item matrices that the step touched (their
gradients are sparse: ``F.embedding(..., sparse=True)``).

What is kept equal to rnnrec, so that a test can check loss and gradients in
float64:

- parameters named and laid out as rnnrec's (``W_y``, ``b_y``, ``E``,
  ``layer{i}.weight_ih`` ...), the GRU's as in ``torch.nn.GRUCell``; one-hot
  input (``embedding=0``) gathers rows of ``E (V, 3H)`` as the first layer's
  input projection;
- the initialisation, draw for draw from the same NumPy generator;
- only the valid positions' inputs reach the input table's gradient, so the
  optimizer touches the same rows;
- the state carried to the next block is the output after dropout, detached;
- the loss formulas of `rnnrec.losses` (log space, no 1e-24 floors), and the
  log-Q correction ``logq * [log p0(targets), alpha log p0(negatives)]``;
- batches from `rnnrec.data.session_parallel_batches` and negatives from
  `rnnrec.sampling.PopularitySampler` on the same generator, and by default
  dropout masks drawn from it too, so that a seeded run sees the same batches,
  negatives and masks as ``SessionRecommender.fit``.

Evaluation has two forms. ``init_state``, ``carry_state`` and ``score_next``
follow the scorer protocol of `rnnrec.evaluation.evaluate_next_click`, so that
rnnrec's evaluator can drive the twin. `TorchRecommender.evaluate` is the twin's
own evaluation, all in PyTorch: the same walk over the test sessions in
session-parallel slots, and for every step of B slots::

    h      = GRU(E[items]; reset)           (B, H)
    scores = h W_y^T + b_y                  (B, V)      all items
    s_t    = scores[b, target_b]            (B, 1)
    rank   = 1 + #{j : scores_j > s_t}      (B,)        ``ties="standard"``

then Recall@K, MRR@K and NDCG@K as `rnnrec.metrics` defines them.

Only the GRU in PyTorch's form (``gru_variant="torch"``), the Adagrad optimizer
and no gradient clipping are supported; other settings raise ``ValueError``.
"""

from __future__ import annotations

import functools
import math
import time

import numpy as np
import torch
import torch.nn.functional as F

from rnnrec._validation import check_choice, check_positive_int
from rnnrec.data import n_pairs, session_parallel_batches
from rnnrec.evaluation import MAX_SCORE_BYTES
from rnnrec.losses import parse_activation
from rnnrec.metrics import TIES, _check_cutoffs
from rnnrec.model import SessionRecommender
from rnnrec.sampling import PopularitySampler

DEFAULTS = SessionRecommender().get_config()
LOSSES = ("cross-entropy", "bpr-max", "top1-max", "bpr", "top1")
MASK_SOURCES = ("numpy", "torch")


# -- the GRU -----------------------------------------------------------------------


def gru_forward(x, h0, keep, params, prefix, projected=False):
    """Run one GRU layer over a block of T steps (PyTorch's equations).

    ::

        r_t = sigma(W_ir x_t + b_ir + W_hr h + b_hr)        h = keep_t * h_{t-1}
        z_t = sigma(W_iz x_t + b_iz + W_hz h + b_hz)
        n_t = tanh(W_in x_t + b_in + r_t * (W_hn h + b_hn))
        h_t = (1 - z_t) * n_t + z_t * h

    The input projections of all T steps are one matrix product before the loop.

    Parameters
    ----------
    x : torch.Tensor
        Inputs ``(T, B, D)``; in projected mode the projections ``x_t W_ih^T``
        ``(T, B, 3H)``.
    h0 : torch.Tensor
        Initial state ``(B, H)``.
    keep : torch.Tensor
        ``(T, B, 1)``: 0 where a session starts (the state is zeroed before the
        step), else 1.
    params : dict of str to torch.Tensor
        Holds ``{prefix}weight_ih (3H, D)`` (not read in projected mode),
        ``{prefix}weight_hh (3H, H)``, ``{prefix}bias_ih (3H,)``,
        ``{prefix}bias_hh (3H,)``.
    prefix : str
        The layer's part of the names, e.g. ``"layer0."``.
    projected : bool, default False
        ``x`` already holds the input projections.

    Returns
    -------
    out : torch.Tensor
        Every hidden state ``(T, B, H)``.
    h_T : torch.Tensor
        The final state ``(B, H)``.
    """
    W_hh, b_ih = params[prefix + "weight_hh"], params[prefix + "bias_ih"]
    b_hh = params[prefix + "bias_hh"]
    if projected:
        gi = x + b_ih  # (T, B, 3H)
    else:
        gi = F.linear(x, params[prefix + "weight_ih"], b_ih)  # (T, B, 3H)
    h = h0
    out = []
    for t in range(x.shape[0]):
        h = h * keep[t]
        gh = F.linear(h, W_hh, b_hh)  # (B, 3H)
        i_r, i_z, i_n = gi[t].chunk(3, dim=1)
        h_r, h_z, h_n = gh.chunk(3, dim=1)
        r_t = torch.sigmoid(i_r + h_r)
        z_t = torch.sigmoid(i_z + h_z)
        n_t = torch.tanh(i_n + r_t * h_n)
        h = (1 - z_t) * n_t + z_t * h
        out.append(h)
    return torch.stack(out), h


# -- final activations and losses ----------------------------------------------------


def final_activation(scores, name):
    """Apply a final activation of `rnnrec.losses` to the scores.

    Parameters
    ----------
    scores : torch.Tensor
        ``(N, C)``.
    name : str
        ``"linear"``, ``"relu"``, ``"tanh"``, ``"elu-<alpha>"`` or
        ``"leaky-<alpha>"``.

    Returns
    -------
    torch.Tensor
        ``(N, C)``.
    """
    act = parse_activation(name)
    if act.kind == "linear":
        return scores
    if act.kind == "relu":
        return F.relu(scores)
    if act.kind == "tanh":
        return torch.tanh(scores)
    if act.kind == "elu":
        return F.elu(scores, alpha=act.alpha)
    return F.leaky_relu(scores, negative_slope=act.alpha)


@functools.lru_cache(maxsize=8)
def _positives(N, C):
    """``(N, C)`` bool, true at row i's positive (column i)."""
    return torch.eye(N, C, dtype=torch.bool)


def _diagonal(r):
    """Return the positives' scores ``r[i, i]`` as a column ``(N, 1)``."""
    return r.diagonal()[:, None]


def cross_entropy(r, log_q=None):
    """Per-row sampled softmax cross-entropy, with an optional log-Q correction.

    ``L_i = -log softmax(r_i - log_q)[i]``.

    Parameters
    ----------
    r : torch.Tensor
        Scores ``(N, C)``, row i's positive in column i.
    log_q : torch.Tensor, optional
        ``(C,)``, subtracted from every row.

    Returns
    -------
    torch.Tensor
        ``(N,)``.
    """
    z = r if log_q is None else r - log_q  # (N, C)
    target = torch.arange(r.shape[0])
    return F.cross_entropy(z, target, reduction="none")


def bpr_max(r, bpreg):
    """Per-row BPR-max, in log space as `rnnrec.losses.bpr_max_forward`.

    ``L_i = -log sum_j s_ij sigma(r_i - r_ij) + bpreg sum_j s_ij r_ij^2``, with
    ``s_i`` the softmax over the negatives of row i (every column but i).

    Parameters
    ----------
    r : torch.Tensor
        Scores ``(N, C)``, ``C >= 2``.
    bpreg : float
        Weight of the score regulariser.

    Returns
    -------
    torch.Tensor
        ``(N,)``.
    """
    positive = _positives(*r.shape)
    log_s = F.log_softmax(r.masked_fill(positive, -math.inf), dim=1)  # (N, C)
    pairs = log_s + F.logsigmoid(_diagonal(r) - r)  # (N, C), -inf at positives
    ranking = -torch.logsumexp(pairs, dim=1)  # (N,)
    penalty = (log_s.exp() * r * r).sum(dim=1)  # (N,)
    return ranking + bpreg * penalty


def top1_max(r):
    """Per-row TOP1-max: ``L_i = sum_j s_ij (sigma(r_ij - r_i) + sigma(r_ij^2))``.

    Parameters
    ----------
    r : torch.Tensor
        Scores ``(N, C)``, ``C >= 2``.

    Returns
    -------
    torch.Tensor
        ``(N,)``.
    """
    positive = _positives(*r.shape)
    s = F.softmax(r.masked_fill(positive, -math.inf), dim=1)  # (N, C)
    g = torch.sigmoid(r - _diagonal(r)) + torch.sigmoid(r * r)  # (N, C)
    return (s * g).sum(dim=1)


def bpr(r):
    """Per-row BPR: ``L_i = mean_j -log sigma(r_i - r_ij)`` over the negatives.

    Parameters
    ----------
    r : torch.Tensor
        Scores ``(N, C)``, ``C >= 2``.

    Returns
    -------
    torch.Tensor
        ``(N,)``.
    """
    terms = F.softplus(r - _diagonal(r))  # (N, C)
    terms = terms.masked_fill(_positives(*r.shape), 0)
    return terms.sum(dim=1) / (r.shape[1] - 1)


def top1(r):
    """Per-row TOP1: ``L_i = mean_j (sigma(r_ij - r_i) + sigma(r_ij^2))``.

    Parameters
    ----------
    r : torch.Tensor
        Scores ``(N, C)``, ``C >= 2``.

    Returns
    -------
    torch.Tensor
        ``(N,)``.
    """
    terms = torch.sigmoid(r - _diagonal(r)) + torch.sigmoid(r * r)  # (N, C)
    terms = terms.masked_fill(_positives(*r.shape), 0)
    return terms.sum(dim=1) / (r.shape[1] - 1)


# -- the optimizer -------------------------------------------------------------------


class AdagradM:
    """GRU4Rec's Adagrad with momentum, with row-sparse updates, in PyTorch.

    With ``g`` the gradient (plus ``weight_decay * p``)::

        G <- G + g^2
        v <- mu v + lr g / sqrt(G + eps)
        p <- p - v

    A sparse gradient (from ``F.embedding(..., sparse=True)``) is coalesced and
    applied to its rows only: the other rows' ``G``, ``v`` and values stay as
    they are, as in `rnnrec.optim.AdagradM` and GRU4Rec's ``IndexedAdagradM``.

    Parameters
    ----------
    params : dict of str to torch.Tensor
        Leaf tensors, updated in place from their ``.grad``.
    lr : float
        Learning rate.
    momentum : float, default 0
        ``mu``.
    eps : float, default 1e-6
        Added to ``G`` under the root.
    weight_decay : float, default 0
        L2 coefficient.

    Attributes
    ----------
    state : dict of str to dict
        ``sum_sq`` (and ``velocity`` with momentum) of every parameter.
    """

    def __init__(self, params, lr, momentum=0.0, eps=1e-6, weight_decay=0.0):
        self.params = params
        self.lr, self.momentum, self.eps = lr, momentum, eps
        self.weight_decay = weight_decay
        self.state = {}
        for name, p in params.items():
            self.state[name] = {"sum_sq": torch.zeros_like(p)}
            if momentum:
                self.state[name]["velocity"] = torch.zeros_like(p)

    @torch.no_grad()
    def step(self):
        """Update every parameter that has a gradient, in place."""
        for name, p in self.params.items():
            if p.grad is None:
                continue
            if p.grad.is_sparse:
                self._sparse_step(p, p.grad.coalesce(), self.state[name])
            else:
                self._dense_step(p, p.grad, self.state[name])

    def _dense_step(self, p, g, state):
        if self.weight_decay:
            g = g + self.weight_decay * p
        G = state["sum_sq"]
        G.addcmul_(g, g)
        u = self.lr * g / (G + self.eps).sqrt_()
        if self.momentum:
            u = state["velocity"].mul_(self.momentum).add_(u)
        p.sub_(u)

    def _sparse_step(self, p, grad, state):
        rows, g = grad.indices()[0], grad.values()  # (K,), (K, R)
        if self.weight_decay:
            g = g + self.weight_decay * p[rows]
        G_rows = state["sum_sq"][rows].addcmul_(g, g)  # (K, R)
        state["sum_sq"].index_copy_(0, rows, G_rows)
        u = self.lr * g / G_rows.add_(self.eps).sqrt_()
        if self.momentum:
            v = state["velocity"]
            u = v[rows].mul_(self.momentum).add_(u)
            v.index_copy_(0, rows, u)
        p.index_add_(0, rows, u, alpha=-1)


# -- the recommender -------------------------------------------------------------------


def _uniform(rng, shape, dtype):
    """``U(-s, s)`` with ``s = sqrt(6 / (rows + cols))``, from a NumPy generator."""
    bound = np.sqrt(6.0 / (shape[0] + shape[1]))
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


def _as_rng(seed):
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


class TorchRecommender:
    """The session recommender of rnnrec, trained with PyTorch autograd.

    Parameters
    ----------
    mask_source : {"numpy", "torch"}, default "numpy"
        Where dropout masks come from: the NumPy generator that also drives the
        negative sampler, drawn as rnnrec draws them (a seeded run then sees the
        same masks and negatives as rnnrec's), or PyTorch's own generator.
    **config
        The keyword arguments of `rnnrec.model.SessionRecommender`, e.g. from
        its ``get_config()`` or a file of ``benchmarks/configs``; ``backend``
        and ``verbose`` are ignored.

    Attributes
    ----------
    params : dict of str to torch.Tensor
        ``W_y (V, H)``, ``b_y (V, 1)``, ``E (V, D)`` unless tied, and
        ``layer{i}.weight_ih (3H, D)`` (not for one-hot input's first layer),
        ``layer{i}.weight_hh (3H, H)``, ``layer{i}.bias_ih (3H,)``,
        ``layer{i}.bias_hh (3H,)``.
    history_ : list of dict
        Per epoch of `fit`: loss, seconds, events per second.
    """

    def __init__(self, *, mask_source="numpy", **config):
        unknown = sorted(set(config) - set(DEFAULTS))
        if unknown:
            raise TypeError(f"unknown settings {unknown}; allowed: {sorted(DEFAULTS)}")
        self.mask_source = mask_source
        self.config = {**DEFAULTS, **config}

    def _check_config(self):
        c = self.config
        allowed = {
            "cell": ("gru",),
            "gru_variant": ("torch",),
            "optimizer": ("adagrad",),
            "clip_grad_norm": (None,),
            "loss": LOSSES,
        }
        for name, values in allowed.items():
            if c[name] not in values:
                raise ValueError(
                    f"the PyTorch twin supports {name} in {values}, got {c[name]!r}"
                )
        if self.mask_source not in MASK_SOURCES:
            raise ValueError(
                f"mask_source must be one of {MASK_SOURCES}, got {self.mask_source!r}"
            )

    @property
    def dtype(self):
        """numpy.dtype: the dtype of parameters and arithmetic."""
        return np.dtype(self.config["dtype"])

    @property
    def n_items(self):
        """int: number of items V."""
        return self.params["b_y"].shape[0]

    @property
    def n_layers(self):
        """int: number of recurrent layers."""
        return len(self.config["layers"])

    # -- parameters ---------------------------------------------------------------

    def build(self, n_items, rng):
        """Initialise the parameters as ``SessionRecommender._build`` does.

        The same draws from the same generator in the same order: item matrices
        ``U(-s, s)`` with ``s = sqrt(6 / (V + H))``, every gate's block of the
        GRU weights Glorot-uniform, biases zero. With one-hot input the first
        layer's input weights are drawn and dropped, as rnnrec does.

        Parameters
        ----------
        n_items : int
            V.
        rng : numpy.random.Generator
            Source of the draws.

        Returns
        -------
        TorchRecommender
            ``self``.
        """
        self._check_config()
        dtype, c = self.dtype, self.config
        sizes = [int(h) for h in c["layers"]]
        params = {
            "W_y": _uniform(rng, (n_items, sizes[-1]), dtype),
            "b_y": np.zeros((n_items, 1), dtype),
        }
        if c["embedding"] == "tied":
            first_input = sizes[-1]
        else:
            D = c["embedding"] or 3 * sizes[0]
            params["E"], first_input = _uniform(rng, (n_items, D), dtype), D
        for i, (D, H) in enumerate(zip([first_input, *sizes[:-1]], sizes, strict=True)):
            W_ih = np.concatenate([_uniform(rng, (H, D), dtype) for _ in range(3)])
            W_hh = np.concatenate([_uniform(rng, (H, H), dtype) for _ in range(3)])
            if not (i == 0 and c["embedding"] == 0):
                params[f"layer{i}.weight_ih"] = W_ih
            params[f"layer{i}.weight_hh"] = W_hh
            params[f"layer{i}.bias_ih"] = np.zeros(3 * H, dtype)
            params[f"layer{i}.bias_hh"] = np.zeros(3 * H, dtype)
        self._set_params(params)
        return self

    def _set_params(self, arrays):
        self.params = {
            name: torch.tensor(value).requires_grad_(True)
            for name, value in arrays.items()
        }

    def load_rnnrec(self, model):
        """Copy the parameters of a built or fitted ``SessionRecommender``.

        Parameters
        ----------
        model : rnnrec.model.SessionRecommender
            A model with this twin's configuration.

        Returns
        -------
        TorchRecommender
            ``self``.
        """
        self._check_config()
        arrays = {"W_y": model.W_y_, "b_y": model.b_y_[:, None]}
        if model.E_ is not None:
            arrays["E"] = model.E_
        for i, layer in enumerate(model.layers_):
            for name, value in layer.params.items():
                if not (
                    i == 0 and self.config["embedding"] == 0 and name == "weight_ih"
                ):
                    arrays[f"layer{i}.{name}"] = value
        self._set_params({name: np.array(v, self.dtype) for name, v in arrays.items()})
        return self

    @classmethod
    def from_rnnrec(cls, model, mask_source="numpy"):
        """Build a twin with a model's configuration and a copy of its weights.

        Parameters
        ----------
        model : rnnrec.model.SessionRecommender
            A built or fitted model.
        mask_source : {"numpy", "torch"}, default "numpy"
            See the class docstring.

        Returns
        -------
        TorchRecommender
            The twin.
        """
        return cls(mask_source=mask_source, **model.get_config()).load_rnnrec(model)

    def numpy_params(self):
        """Return copies of the parameters, keyed and shaped as rnnrec's.

        Returns
        -------
        dict of str to numpy.ndarray
            ``b_y`` as ``(V,)``, the rest as in `params`.
        """
        out = {name: p.detach().numpy().copy() for name, p in self.params.items()}
        out["b_y"] = out["b_y"][:, 0]
        return out

    def numpy_grads(self):
        """Return the gradients of the last `train_block` as dense arrays.

        Returns
        -------
        dict of str to numpy.ndarray
            Keyed and shaped as `numpy_params`; sparse gradients densified.
        """
        out = {}
        for name, p in self.params.items():
            g = p.grad.to_dense() if p.grad.is_sparse else p.grad
            out[name] = g.numpy().copy()
        out["b_y"] = out["b_y"][:, 0]
        return out

    def make_optimizer(self):
        """Return the optimizer of the configuration over `params`.

        Returns
        -------
        AdagradM
            With the configured learning rate, momentum and L2.
        """
        c = self.config
        return AdagradM(
            self.params,
            lr=c["learning_rate"],
            momentum=c["momentum"],
            weight_decay=c["l2"],
        )

    # -- one block forward and backward ----------------------------------------------

    def _mask(self, shape, p, rng):
        """Draw an inverted-dropout mask: 0, or ``1 / (1 - p)`` where kept."""
        if self.mask_source == "numpy":
            keep = rng.random(shape) >= p
            return torch.from_numpy(keep.astype(self.dtype) / self.dtype.type(1 - p))
        keep = torch.rand(shape, dtype=self.params["W_y"].dtype) >= p
        return keep.to(self.params["W_y"].dtype) / (1 - p)

    def _lookup(self, batch, candidates, positions):
        """Gather the inputs' and the candidates' rows of the item matrices.

        Only the valid positions' inputs are looked up through the sparse,
        differentiable path; the padding (invalid positions, which rnnrec feeds
        but never learns from) is filled with constant rows.

        Returns ``x (T, B, D)``, ``W_c (C, H)`` and ``b_c (C, 1)``.
        """
        T, B = batch.inputs.shape
        inputs = torch.from_numpy(batch.inputs.reshape(-1)[positions])  # (N,)
        cand = torch.from_numpy(candidates)  # (C,)
        p = self.params
        if "E" in p:
            table = p["E"]
            x_valid = F.embedding(inputs, table, sparse=True)  # (N, D)
            W_c = F.embedding(cand, p["W_y"], sparse=True)  # (C, H)
        else:
            # Tied: one lookup of the inputs and the candidates, one sparse grad.
            table = p["W_y"]
            both = F.embedding(torch.cat([inputs, cand]), table, sparse=True)
            x_valid, W_c = both[: len(inputs)], both[len(inputs) :]
        b_c = F.embedding(cand, p["b_y"], sparse=True)  # (C, 1)
        if len(positions) == T * B:
            x = x_valid.reshape(T, B, -1)
        else:
            x = table.detach()[torch.from_numpy(batch.inputs.reshape(-1))]
            x = x.index_copy(0, torch.from_numpy(positions), x_valid)
            x = x.reshape(T, B, -1)
        return x, W_c, b_c

    def _loss(self, scores, log_q):
        """Return the sum over rows of the configured loss ``(N, C) -> ()``."""
        c = self.config
        final_act = c["final_act"] or ("elu-1" if c["loss"] == "bpr-max" else "linear")
        y = final_activation(scores, final_act)  # (N, C)
        if c["loss"] == "cross-entropy":
            per_row = cross_entropy(y, log_q)
        elif c["loss"] == "bpr-max":
            per_row = bpr_max(y, c["bpreg"])
        elif c["loss"] == "top1-max":
            per_row = top1_max(y)
        elif c["loss"] == "bpr":
            per_row = bpr(y)
        else:
            per_row = top1(y)
        return per_row.sum()

    def train_block(self, batch, states, negatives, log_p0=None, rng=None):
        """Forward and backward over one block; gradients land in ``.grad``.

        Parameters
        ----------
        batch : rnnrec.data.Batch
            The block: ``inputs``, ``targets``, ``reset``, ``valid`` ``(T, B)``.
        states : list of torch.Tensor
            Each layer's state ``(B, H_l)`` for the block (see `carry_state`).
        negatives : numpy.ndarray
            ``(S,)`` int64 shared sampled items.
        log_p0 : numpy.ndarray, optional
            ``(V,)`` log training click counts, for the log-Q correction.
        rng : numpy.random.Generator, optional
            None: no dropout (as in rnnrec's gradient checks); else dropout is
            on, its masks drawn from ``rng`` (``mask_source="numpy"``) or from
            PyTorch's generator.

        Returns
        -------
        loss : float
            Sum of the block's per-prediction losses over ``batch_size``.
        states : list of torch.Tensor
            Each layer's final state, detached, for the next block.
        """
        c = self.config
        for p in self.params.values():
            p.grad = None
        T, B = batch.inputs.shape
        positions = np.flatnonzero(batch.valid.reshape(-1))  # (N,)
        N = len(positions)
        targets = batch.targets.reshape(-1)[positions]  # (N,)
        candidates = np.concatenate([targets, negatives])  # (C,)
        x, W_c, b_c = self._lookup(batch, candidates, positions)  # (T, B, D)

        p_embed = c["dropout_p_embed"] if rng is not None else 0.0
        p_hidden = c["dropout_p_hidden"] if rng is not None else 0.0
        onehot = c["embedding"] == 0
        if p_embed:
            # A one-hot input is kept or dropped whole: one draw per position.
            shape = (T, B, 1) if onehot else x.shape
            x = x * self._mask(shape, p_embed, rng)
        keep = torch.from_numpy((~batch.reset)[:, :, None].astype(self.dtype))
        finals = []
        for i in range(self.n_layers):
            out, h_T = gru_forward(
                x, states[i], keep, self.params, f"layer{i}.", (i == 0 and onehot)
            )
            if p_hidden:
                x = out * self._mask(out.shape, p_hidden, rng)
                # As in rnnrec and GRU4Rec: the carried state is after dropout.
                h_T = x[-1]
            else:
                x = out
            finals.append(h_T.detach())

        H = x.shape[2]
        h_v = x.reshape(T * B, H)
        if N < T * B:
            h_v = h_v[torch.from_numpy(positions)]  # (N, H)
        scores = torch.addmm(b_c.t(), h_v, W_c.t())  # (N, C)
        log_q = None
        if c["loss"] == "cross-entropy" and c["logq"] and log_p0 is not None:
            log_q = c["logq"] * np.concatenate(
                [log_p0[targets], c["sample_alpha"] * log_p0[negatives]]
            )
            log_q = torch.from_numpy(log_q.astype(self.dtype))  # (C,)
        loss = self._loss(scores, log_q) / c["batch_size"]
        loss.backward()
        return loss.item(), finals

    # -- training -----------------------------------------------------------------

    def fit(self, train):
        """Train on sessions, as ``SessionRecommender.fit`` does.

        The generator of ``seed`` initialises the parameters, feeds the
        `PopularitySampler` and, with ``mask_source="numpy"``, the dropout
        masks, in rnnrec's order.

        Parameters
        ----------
        train : rnnrec.data.Sessions
            Training sessions, in time order.

        Returns
        -------
        TorchRecommender
            ``self``.
        """
        c = self.config
        rng = _as_rng(c["seed"])
        self.build(train.n_items, rng)
        counts = train.item_counts()
        sampler = PopularitySampler(counts, c["sample_alpha"], seed=rng)
        log_p0 = np.log(np.maximum(counts, 1e-3))
        optimizer = self.make_optimizer()
        total_pairs = n_pairs(train)
        if total_pairs == 0:
            raise ValueError("train has no session of 2 or more clicks to learn from")
        self.history_ = []
        for epoch in range(1, c["n_epochs"] + 1):
            start, losses, weights = time.perf_counter(), 0.0, 0
            states = None
            batches = session_parallel_batches(
                train, c["batch_size"], steps=c["bptt"], shuffle=False, seed=rng
            )
            for step, batch in enumerate(batches, start=1):
                states = self.carry_state(states, batch.carry)
                negatives = sampler.sample(c["n_sample"])
                loss, states = self.train_block(batch, states, negatives, log_p0, rng)
                if not math.isfinite(loss):
                    raise FloatingPointError(
                        f"the loss became {loss} at epoch {epoch}, step {step}"
                    )
                optimizer.step()
                losses += loss * c["batch_size"]
                weights += batch.n_valid
            seconds = time.perf_counter() - start
            self.history_.append(
                {
                    "epoch": epoch,
                    "loss": losses / max(weights, 1),
                    "seconds": seconds,
                    "events_per_second": weights / seconds,
                }
            )
        return self

    # -- scoring (the protocol of rnnrec.evaluation.evaluate_next_click) ------------

    def init_state(self, batch_size):
        """Return zero states for ``batch_size`` session slots.

        Parameters
        ----------
        batch_size : int
            B.

        Returns
        -------
        list of torch.Tensor
            One ``(B, H_l)`` state per layer.
        """
        dtype = self.params["W_y"].dtype
        return [
            torch.zeros(batch_size, int(H), dtype=dtype) for H in self.config["layers"]
        ]

    def carry_state(self, state, carry):
        """Keep the slots named by ``carry`` (new slot b continues old slot carry[b]).

        Parameters
        ----------
        state : list of torch.Tensor or None
            One ``(B, H_l)`` state per layer; None gives zero states.
        carry : numpy.ndarray
            ``(B',)`` int64.

        Returns
        -------
        list of torch.Tensor
            One ``(B', H_l)`` state per layer.
        """
        if state is None:
            return self.init_state(len(carry))
        rows = torch.from_numpy(np.asarray(carry))
        return [s[rows] for s in state]

    @torch.no_grad()
    def score_next(self, state, items, reset):
        """Score every item as the next click of each slot's session.

        Parameters
        ----------
        state : list of torch.Tensor
            One ``(B, H_l)`` state per layer.
        items : numpy.ndarray
            ``(B,)`` int64, each slot's current click.
        reset : numpy.ndarray
            ``(B,)`` bool, a new session starts at this click.

        Returns
        -------
        scores : numpy.ndarray
            ``(B, V)``.
        state : list of torch.Tensor
            The updated state.
        """
        p = self.params
        h, new_state = self._advance(
            state,
            torch.from_numpy(np.asarray(items)),
            torch.from_numpy(~np.asarray(reset)),
        )
        scores = torch.addmm(p["b_y"].t(), h, p["W_y"].t())  # (B, V)
        return scores.numpy(), new_state

    def _advance(self, state, items, keep):
        """Feed one click per slot through the layers; return ``(h, state)``.

        ``items`` is ``(B,)`` int64 and ``keep`` ``(B,)`` bool, false where a
        session starts; ``h`` is the top layer's output ``(B, H)``.
        """
        p = self.params
        table = p["E"] if "E" in p else p["W_y"]
        x = table[items][None]  # (1, B, D)
        keep = keep[None, :, None].to(table.dtype)  # (1, B, 1)
        onehot = self.config["embedding"] == 0
        new_state = []
        for i in range(self.n_layers):
            x, h_T = gru_forward(x, state[i], keep, p, f"layer{i}.", i == 0 and onehot)
            new_state.append(h_T)
        return x[0], new_state

    # -- the twin's own evaluation, all in PyTorch -----------------------------------

    @torch.no_grad()
    def evaluate(
        self,
        test,
        *,
        cutoffs=(5, 10, 20),
        ties="standard",
        batch_size=256,
        max_score_bytes=MAX_SCORE_BYTES,
    ):
        """Rank every next click of the test sessions among all items, in PyTorch.

        The protocol and the conventions of
        `rnnrec.evaluation.evaluate_next_click`: every prefix of a test session
        predicts the click that follows it (sessions of fewer than 2 clicks make
        none); ``B`` slots hold one session each, a finished slot takes the next
        session, and when none is left the finished slots are dropped. The
        ranking and the metrics are computed here with PyTorch, not with
        rnnrec's functions.

        Parameters
        ----------
        test : rnnrec.data.Sessions
            Test sessions over the training item index. Items unknown to
            training must be removed beforehand (as
            `rnnrec.data.index_test_like_train` does); a click on an item
            ``>= V`` raises ``ValueError``, as in rnnrec.
        cutoffs : int or sequence of int, default (5, 10, 20)
            List lengths ``K`` of the metrics.
        ties : {"standard", "conservative", "median"}, default "standard"
            How items scored equal to the target count, see `target_ranks`.
        batch_size : int, default 256
            Number of session-parallel slots ``B``.
        max_score_bytes : int, default 2**28 (256 MiB)
            Memory allowed for one step's ``(B, V)`` arrays: the scores, their
            bool comparisons with the targets' scores, and the int32 copy of
            those that the count makes: ``B`` is lowered (to 1 at the least)
            until they fit. The ranks do not depend on ``B``.

        Returns
        -------
        dict
            ``"recall@K"``, ``"mrr@K"`` and ``"ndcg@K"`` for every cutoff, and
            ``"n"``, the number of predictions (NaN metrics if ``n`` is 0).

        Raises
        ------
        ValueError
            If a setting is out of range, ``test`` clicks an item ``>= V``, or
            a hidden state or the output weights hold NaN (rnnrec refuses NaN
            scores; these are where they come from, and checking them costs
            far less than scanning every score).
        """
        # The settings are checked as rnnrec checks them; what is compared is
        # the evaluation itself.
        cutoffs = _check_cutoffs(cutoffs)
        check_choice(ties, "ties", TIES)
        batch_size = check_positive_int(batch_size, "batch_size")
        max_score_bytes = check_positive_int(max_score_bytes, "max_score_bytes")
        p = self.params
        W_y, b_y = p["W_y"], p["b_y"].t()  # (V, H), (1, V)
        V = self.n_items
        if test.n_clicks and test.items.max() >= V:
            n_unknown = int(np.count_nonzero(test.items >= V))
            raise ValueError(
                f"test has {n_unknown} click(s) on items >= the model's n_items={V}; "
                f"remove items unknown to training before evaluating"
            )
        if W_y.isnan().any() or b_y.isnan().any():
            raise ValueError("the output weights W_y or b_y hold NaN")

        items = torch.from_numpy(test.items)  # (n_clicks,)
        long_enough = torch.from_numpy(test.lengths >= 2)  # (n_sessions,)
        offsets = torch.from_numpy(test.offsets)
        starts = offsets[:-1][long_enough]  # (n_eval,)
        ends = offsets[1:][long_enough]  # (n_eval,)
        n_eval = len(starts)
        K = torch.tensor(cutoffs, dtype=torch.float64)[:, None]  # (C, 1)
        hits = torch.zeros(len(cutoffs), dtype=torch.float64)  # (C,)
        rr = torch.zeros(len(cutoffs), dtype=torch.float64)  # (C,)
        dcg = torch.zeros(len(cutoffs), dtype=torch.float64)  # (C,)
        n = 0

        # A row of scores, of bools, and of the int32 copy `target_ranks` sums.
        slot_bytes = V * (W_y.element_size() + 1 + 4)
        B = min(batch_size, n_eval, max(1, max_score_bytes // slot_bytes))
        score_buffer = torch.empty(B, V, dtype=W_y.dtype)  # (B, V)
        compare_buffer = torch.empty(B, V, dtype=torch.bool)  # (B, V)
        session = torch.arange(B)  # (B,) session of every slot, into starts/ends
        pos = starts[:B].clone()  # (B,) click each slot feeds at this step
        keep = torch.zeros(B, dtype=torch.bool)  # (B,) false where a session starts
        next_session = B
        state = self.init_state(B)
        while len(session):
            B = len(session)
            h, state = self._advance(state, items[pos], keep)  # (B, H)
            if h.isnan().any():
                raise ValueError(f"a hidden state became NaN after {n} predictions")
            scores = torch.addmm(b_y, h, W_y.t(), out=score_buffer[:B])  # (B, V)
            ranks = target_ranks(scores, items[pos + 1], ties, compare_buffer[:B])
            hit = (ranks <= K).to(torch.float64)  # (C, B)
            hits += hit.sum(dim=1)
            rr += (hit / ranks).sum(dim=1)
            dcg += (hit / torch.log2(ranks + 1)).sum(dim=1)
            n += B

            # Step on; the slots whose sessions have no further target take the
            # next sessions in slot order, or are dropped when none are left.
            pos += 1
            keep.fill_(True)
            done = torch.nonzero(pos + 1 >= ends[session]).flatten()  # (F,)
            renewed = done[: n_eval - next_session]
            session[renewed] = torch.arange(next_session, next_session + len(renewed))
            pos[renewed] = starts[session[renewed]]
            keep[renewed] = False
            next_session += len(renewed)
            if len(renewed) < len(done):
                session[done[len(renewed) :]] = -1
                carry = torch.nonzero(session >= 0).flatten()  # (B',)
                session, pos, keep = session[carry], pos[carry], keep[carry]
                state = [s[carry] for s in state]

        out = {}
        for i, k in enumerate(cutoffs):
            for name, total in (("recall", hits), ("mrr", rr), ("ndcg", dcg)):
                out[f"{name}@{k}"] = total[i].item() / n if n else math.nan
        out["n"] = n
        return out


def target_ranks(scores, targets, ties="standard", compare=None):
    """Rank each row's target among all items by score, in PyTorch (1 is best).

    ``standard`` counts ``1 + #{j : s_j > s_t}`` (ties in the target's favour),
    ``conservative`` ``#{j : s_j >= s_t}`` (ties against it, the target counted
    once), ``median`` the mean of the two.

    Parameters
    ----------
    scores : torch.Tensor
        ``(B, V)`` scores, higher is better.
    targets : torch.Tensor
        ``(B,)`` int64 index of each row's true item.
    ties : {"standard", "conservative", "median"}, default "standard"
        How items scored equal to the target count.
    compare : torch.Tensor, optional
        ``(B, V)`` bool buffer the comparisons are written into.

    Returns
    -------
    torch.Tensor
        ``(B,)`` float64 ranks in ``[1, V]``.
    """
    # Summing bools first copies all (B, V) of them into the sum's dtype: int32
    # makes that copy half the size of int64's, the default, and about twice as
    # fast. A count is at most V, far below int32's 2**31 - 1.
    s_t = scores.gather(1, targets[:, None])  # (B, 1)
    above = torch.gt(scores, s_t, out=compare).sum(dim=1, dtype=torch.int32)  # (B,)
    if ties == "standard":
        return (above + 1).to(torch.float64)
    not_below = torch.ge(scores, s_t, out=compare)  # (B, V), the target included
    at_least = not_below.sum(dim=1, dtype=torch.int32)  # (B,)
    if ties == "conservative":
        return at_least.to(torch.float64)
    return (above + 1 + at_least).to(torch.float64) / 2
