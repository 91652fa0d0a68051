"""The session recommender: GRU4Rec done right, every gradient written by hand.

One training step on a block of T steps of B session-parallel slots::

    x      = E[items]                      (T, B, D)   embedding lookup (or one-hot)
    h^l    = layer_l(h^{l-1}; reset)       (T, B, H_l) the recurrent layers
    h_v    = h^L at the valid positions    (N, H)
    cand   = [targets; negatives]          (C,)        C = N + n_sample
    R      = h_v W_y[cand]^T + b_y[cand]   (N, C)      sampled scores
    loss   = L(R)                                      row i's target is column i

and back again, with the item matrices' gradients kept row-sparse. The state is
carried from block to block (reset where a new session starts), and the gradient
stops at block borders: ``bptt=1`` is GRU4Rec's one-step gradient, ``bptt=k``
truncated backpropagation through time over blocks of ``k`` steps.

Around that core: `fit` stops with a message as soon as the loss or a gradient
is no longer finite, and can write checkpoints and resume from them exactly
(`rnnrec.model.checkpoint`, `rnnrec.model.training`); `recommend` scores the
catalogue a block of items at a time (`rnnrec.model.ranking`); `save` and
`load` write and check one ``.npz`` file (`rnnrec.model.saving`).
"""

from __future__ import annotations

import itertools
import logging
import math
import time
import warnings

import numpy as np

from rnnrec._validation import (
    as_rng,
    check_choice,
    check_dtype,
    check_mask,
    check_positive_int,
)
from rnnrec.cells import GRU, LSTM, RNN
from rnnrec.clipping import clip_grad_norm
from rnnrec.model.checkpoint import (
    TrainingRun,
    check_resumable,
    data_fingerprint,
    read_checkpoint,
    restore_checkpoint,
    write_checkpoint,
)
from rnnrec.model.dropout import dropout_backward, dropout_forward
from rnnrec.model.output import (
    add_rows,
    sampled_scores_backward,
    sampled_scores_forward,
)
from rnnrec.model.ranking import encode_sessions, top_k_scores
from rnnrec.model.saving import CONFIG_NAMES, read_model, write_model
from rnnrec.model.training import (
    TrainingContext,
    check_folder,
    check_training_data,
    divergence_message,
    global_norm,
)
from rnnrec.optim import RowSparse, coalesce_rows
from rnnrec.progress import progress_bar

log = logging.getLogger(__name__)

CELLS = {"gru": GRU, "lstm": LSTM, "rnn": RNN}
LOSSES = ("cross-entropy", "bpr-max", "top1-max", "bpr", "top1")
OPTIMIZERS = ("adagrad", "adam", "sgd")


class SessionRecommender:
    """Next-click recommender for sessions, trained with session-parallel batches.

    Parameters
    ----------
    cell : {"gru", "lstm", "rnn"}, default "gru"
        The recurrent cell.
    layers : sequence of int, default (100,)
        Hidden sizes of the stacked layers.
    embedding : int or "tied", default 0
        0: one-hot input (the first layer's input weights are an item table);
        a positive int: an input embedding of that size; "tied": the input
        embedding is the output item matrix ``W_y`` (GRU4Rec's constrained
        embedding), of size ``layers[-1]``.
    loss : {"cross-entropy", "bpr-max", "top1-max", "bpr", "top1"}
        The sampled loss (see `rnnrec.losses`).
    final_act : str, optional
        Activation of the scores before the loss, "linear" or "elu-<alpha>";
        default "linear", and "elu-1" for "bpr-max".
    bpreg : float, default 1.0
        Score regularisation of "bpr-max".
    logq : float, default 0.0
        Weight of the log-Q correction of "cross-entropy" for the sampling
        probabilities of the candidates (1.0 for the full correction).
    n_sample : int, default 2048
        Extra negatives shared by the mini-batch.
    sample_alpha : float, default 0.5
        Negatives are drawn with probability proportional to popularity^alpha.
    dropout_p_embed, dropout_p_hidden : float, default 0.0
        Dropout on the input embedding and on every layer's output.
    l2 : float, default 0.0
        L2 penalty (weight decay) on the parameters a step touches (for the item
        matrices, only the rows in the mini-batch).
    optimizer : {"adagrad", "adam", "sgd"}, default "adagrad"
        Adagrad with momentum and row-sparse updates (GRU4Rec's), Adam, or SGD
        with momentum.
    learning_rate : float, default 0.05
    momentum : float, default 0.0
    batch_size : int, default 32
    n_epochs : int, default 5
    bptt : int, default 1
        Steps backpropagated through (see the module docstring).
    clip_grad_norm : float, optional
        Clip the global gradient norm of each step.
    gru_variant : {"torch", "cho"}, default "torch"
        Where the GRU applies its reset gate. GRU4Rec uses PyTorch's GRU cell
        ("torch") with an embedding or tied input, and Cho's form only in the
        first layer of its one-hot mode.
    dtype : {np.float32, np.float64}, default np.float32
    backend : {"numba", "numpy"}, default "numba"
    seed : int, optional
        Seed of initialisation, sampling, dropout and shuffling.
    verbose : bool, default False
        Show a progress bar (tqdm, if installed) and log one line per epoch.

    Attributes
    ----------
    item_ids_ : numpy.ndarray
        The training items' own ids, index ``i`` naming item ``i``.
    layers_ : list of RecurrentLayer
    W_y_, b_y_ : numpy.ndarray
        Output item matrix ``(V, H)`` and bias ``(V,)``.
    E_ : numpy.ndarray or None
        Input item table ``(V, D)`` (``(V, G*H)`` for one-hot input), None if tied.
    history_ : list of dict
        Per epoch: loss, seconds, events per second.
    """

    def __init__(
        self,
        *,
        cell="gru",
        layers=(100,),
        embedding=0,
        loss="cross-entropy",
        final_act=None,
        bpreg=1.0,
        logq=0.0,
        n_sample=2048,
        sample_alpha=0.5,
        dropout_p_embed=0.0,
        dropout_p_hidden=0.0,
        l2=0.0,
        optimizer="adagrad",
        learning_rate=0.05,
        momentum=0.0,
        batch_size=32,
        n_epochs=5,
        bptt=1,
        clip_grad_norm=None,
        gru_variant="torch",
        dtype=np.float32,
        backend="numba",
        seed=None,
        verbose=False,
    ):
        self.cell = cell
        self.layers = layers
        self.embedding = embedding
        self.loss = loss
        self.final_act = final_act
        self.bpreg = bpreg
        self.logq = logq
        self.n_sample = n_sample
        self.sample_alpha = sample_alpha
        self.dropout_p_embed = dropout_p_embed
        self.dropout_p_hidden = dropout_p_hidden
        self.l2 = l2
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.batch_size = batch_size
        self.n_epochs = n_epochs
        self.bptt = bptt
        self.clip_grad_norm = clip_grad_norm
        self.gru_variant = gru_variant
        self.dtype = dtype
        self.backend = backend
        self.seed = seed
        self.verbose = verbose

    # -- configuration ------------------------------------------------------------

    def get_config(self):
        """Return the constructor arguments as a JSON-ready dict.

        Returns
        -------
        dict
            Every constructor argument; a Generator given as ``seed`` is
            recorded as None.
        """
        config = {name: getattr(self, name) for name in CONFIG_NAMES}
        for name, value in config.items():
            if isinstance(value, np.generic):  # np.float64(0.1) and the like
                config[name] = value.item()
        config["layers"] = [int(h) for h in self.layers]
        config["dtype"] = np.dtype(self.dtype).name
        if isinstance(self.seed, np.random.Generator):
            config["seed"] = None  # a generator's state is not a setting
        return config

    def _check_config(self):
        """Validate the arguments; called by `fit`."""
        check_choice(self.cell, "cell", tuple(CELLS))
        check_choice(self.loss, "loss", LOSSES)
        check_choice(self.optimizer, "optimizer", OPTIMIZERS)
        check_choice(self.gru_variant, "gru_variant", ("torch", "cho"))
        check_choice(self.backend, "backend", ("numba", "numpy"))
        check_dtype(self.dtype)
        if isinstance(self.layers, (int, np.integer)) or not len(self.layers):
            raise ValueError(
                "layers must be a non-empty sequence of hidden sizes, "
                f"got {self.layers!r}"
            )
        for h in self.layers:
            check_positive_int(h, "every entry of layers")
        if self.embedding != "tied":
            if isinstance(self.embedding, bool) or not isinstance(
                self.embedding, (int, np.integer)
            ):
                raise TypeError(
                    "embedding must be 0 (one-hot), a positive int or 'tied', "
                    f"got {self.embedding!r}"
                )
            if self.embedding < 0:
                raise ValueError(
                    "embedding must be 0, a positive int or 'tied', "
                    f"got {self.embedding}"
                )
        for name in ("batch_size", "n_epochs", "bptt"):
            check_positive_int(getattr(self, name), name)
        if isinstance(self.n_sample, bool) or not isinstance(
            self.n_sample, (int, np.integer)
        ):
            raise TypeError(
                f"n_sample must be a non-negative int, got {self.n_sample!r}"
            )
        if self.n_sample < 0:
            raise ValueError(
                f"n_sample must be a non-negative int, got {self.n_sample}"
            )
        for name in ("dropout_p_embed", "dropout_p_hidden"):
            p = getattr(self, name)
            if not (isinstance(p, (int, float)) and 0 <= p < 1):
                raise ValueError(f"{name} must be in [0, 1), got {p!r}")
        for name in ("learning_rate",):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and v > 0 and math.isfinite(v)):
                raise ValueError(f"{name} must be a positive number, got {v!r}")
        for name in ("momentum", "l2", "logq", "bpreg", "sample_alpha"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and v >= 0 and math.isfinite(v)):
                raise ValueError(f"{name} must be a non-negative number, got {v!r}")
        if self.clip_grad_norm is not None and not (
            isinstance(self.clip_grad_norm, (int, float)) and self.clip_grad_norm > 0
        ):
            raise ValueError(
                f"clip_grad_norm must be None or a positive number, got "
                f"{self.clip_grad_norm!r}"
            )

    # -- parameters -----------------------------------------------------------------

    def _build(self, n_items, rng):
        """Create the parameters, initialised as GRU4Rec does.

        Item matrices ``U(-s, s)`` with ``s = sqrt(6 / (V + H))``; the layers'
        weights Glorot-uniform per gate, their biases zero.
        """
        dtype = np.dtype(self.dtype)
        sizes = [int(h) for h in self.layers]
        cls = CELLS[self.cell]
        kwargs = {"variant": self.gru_variant} if self.cell == "gru" else {}
        G = cls.n_gates
        V = n_items
        self.W_y_ = _uniform(rng, (V, sizes[-1]), dtype)
        self.b_y_ = np.zeros(V, dtype)
        if self.embedding == "tied":
            self.E_, first_input = None, sizes[-1]
        elif self.embedding == 0:
            self.E_, first_input = _uniform(rng, (V, G * sizes[0]), dtype), G * sizes[0]
        else:
            self.E_, first_input = (
                _uniform(rng, (V, self.embedding), dtype),
                self.embedding,
            )
        inputs = [first_input, *sizes[:-1]]
        self.layers_ = [
            cls(
                D,
                H,
                dtype=dtype,
                seed=rng,
                backend=self.backend,
                init="glorot",
                **kwargs,
            )
            for D, H in zip(inputs, sizes, strict=True)
        ]
        if self.embedding == 0:
            # The item table replaces the first layer's input weights.
            self.layers_[0].params["weight_ih"] = np.zeros((G * sizes[0], 1), dtype)
            self.layers_[0].input_size = 1

    def _param_dict(self):
        """All trainable arrays by name (the optimizer's view of the model)."""
        params = {"W_y": self.W_y_, "b_y": self.b_y_}
        if self.E_ is not None:
            params["E"] = self.E_
        for i, layer in enumerate(self.layers_):
            for name, value in layer.params.items():
                if not (i == 0 and self.embedding == 0 and name == "weight_ih"):
                    params[f"layer{i}.{name}"] = value
        return params

    @property
    def n_parameters(self):
        """int: number of trainable scalars (tied tables counted once)."""
        self._check_fitted()
        return sum(int(value.size) for value in self._param_dict().values())

    @property
    def n_items(self):
        """int: number of items the model scores (V); needs a fitted model."""
        self._check_fitted()
        return len(self.b_y_)

    def _input_table(self):
        return self.W_y_ if self.E_ is None else self.E_

    def _set_params(self, params):
        """Point the model at new arrays, keyed like `_param_dict` (for checks)."""
        self.W_y_, self.b_y_ = params["W_y"], params["b_y"]
        if self.E_ is not None:
            self.E_ = params["E"]
        for i, layer in enumerate(self.layers_):
            for name in list(layer.params):
                key = f"layer{i}.{name}"
                if key in params:
                    layer.params[name] = params[key]

    # -- one block forward and backward ------------------------------------------------

    def _train_block(self, batch, states, negatives, loss_fn, rng, log_p0=None):
        """Forward and backward over one block; return loss, grads, final states.

        ``negatives`` are the block's shared sampled items; ``rng`` drives
        dropout (None: no dropout, as in the gradient checks); ``log_p0`` is the
        log of every item's training click count, for the log-Q correction.
        """
        T, B = batch.inputs.shape
        onehot = self.embedding == 0
        x = self._input_table()[batch.inputs]  # (T, B, D)
        p_embed = self.dropout_p_embed if rng is not None else 0.0
        p_hidden = self.dropout_p_hidden if rng is not None else 0.0
        if onehot:
            # Dropping a one-hot input drops its whole row of the projection.
            x, mask_e = _row_dropout(x, p_embed, rng)
        else:
            x, mask_e = dropout_forward(x, p_embed, rng)
        caches, masks, finals = [], [], []
        for i, layer in enumerate(self.layers_):
            out, final, cache = layer.forward(
                x, states[i], batch.reset, projected=(i == 0 and onehot)
            )
            x, mask = dropout_forward(out, p_hidden, rng)
            caches.append(cache)
            masks.append(mask)
            if mask is not None:
                # As in GRU4Rec, the state carried to the next block is the
                # output after dropout (constant here: no gradient flows back).
                final = _replace_h(final, x[-1].copy())
            finals.append(final)

        H = x.shape[2]
        positions = np.flatnonzero(batch.valid.ravel())  # (N,)
        h_v = x.reshape(T * B, H)[positions]  # (N, H)
        targets = batch.targets.ravel()[positions]  # (N,)
        candidates = np.concatenate([targets, negatives])  # (C,)
        rows = batch.inputs.ravel()[positions]  # (N,) the items fed in
        tied = self.E_ is None
        scores, score_cache = sampled_scores_forward(
            h_v, self.W_y_, self.b_y_, candidates, extra_items=rows if tied else None
        )
        log_q = None
        if self.loss == "cross-entropy" and self.logq and log_p0 is not None:
            # Log-Q correction: a column is in the softmax with the probability
            # that its item was drawn, proportional to its click count p0 for the
            # batch's own targets and to p0^alpha for the samples (unnormalised,
            # as in GRU4Rec).
            log_q = self.logq * np.concatenate(
                [log_p0[targets], self.sample_alpha * log_p0[negatives]]
            )
            log_q = log_q.astype(scores.dtype)
        # The block's loss is the sum over its N predictions divided by the
        # configured batch size, as in GRU4Rec (a constant, unlike the mean: the
        # last, thinner blocks of an epoch do not take larger steps).
        mean, loss_cache = loss_fn.forward(scores, log_q)
        N = len(positions)
        scale = N / self.batch_size
        loss = mean * scale
        d_scores = loss_fn.backward(loss_cache, d_loss=scale)

        dh_v, dW_y, db_y = sampled_scores_backward(d_scores, score_cache)
        d_x = np.zeros((T * B, H), x.dtype)  # (T*B, H)
        d_x[positions] = dh_v
        d_x = d_x.reshape(T, B, H)
        grads = {"W_y": dW_y, "b_y": db_y}
        for i in reversed(range(len(self.layers_))):
            d_out = dropout_backward(d_x, masks[i])
            # The state carried in from the last block is a constant here.
            d_x, _, layer_grads = self.layers_[i].backward(
                d_out, caches[i], state_grad=False
            )
            for name, g in layer_grads.items():
                grads[f"layer{i}.{name}"] = g
        d_x = dropout_backward(d_x, mask_e)
        d_in = d_x.reshape(T * B, -1)[positions]  # (N, D)
        if tied:
            # The inputs' rows of W_y are among the scored items: add in place.
            grads["W_y"] = add_rows(grads["W_y"], rows, d_in)
        else:
            grads["E"] = coalesce_rows(rows, d_in)
        return float(loss), grads, finals

    # -- training -------------------------------------------------------------------

    def fit(
        self, train, valid=None, *, checkpoint=None, checkpoint_every=None, resume=None
    ):
        """Train on sessions, optionally writing checkpoints or resuming from one.

        Parameters
        ----------
        train : rnnrec.data.Sessions
            Training sessions, in time order.
        valid : rnnrec.data.Sessions, optional
            Sessions evaluated (Recall@20, MRR@20) after every epoch; they must
            share ``train``'s item index.
        checkpoint : str or os.PathLike, optional
            Write a checkpoint to this file at the end of every epoch (see
            `rnnrec.model.checkpoint`). Each one replaces the last atomically:
            a crash while writing leaves the previous checkpoint whole.
        checkpoint_every : int, optional
            Also write the checkpoint every this many steps (blocks), counted
            from the start of the run; needs ``checkpoint``.
        resume : str or os.PathLike, optional
            Carry on from a checkpoint that a model of the same configuration
            wrote while training on the same ``train``; only ``n_epochs`` (to
            train longer), ``learning_rate``, ``clip_grad_norm`` and
            ``verbose`` may differ. With them unchanged, the result is that of
            the uninterrupted run: the same parameters, optimizer state and
            random stream, bit for bit (in float64 on one thread, see the
            README).

        Returns
        -------
        SessionRecommender
            ``self``.

        Raises
        ------
        FloatingPointError
            If the loss or the gradient becomes NaN or infinite. The message
            names the epoch and step, the largest gradient norm seen before,
            and the remedies; the parameters are those before that step.
        """
        from rnnrec.data.batches import n_pairs
        from rnnrec.losses import get_loss
        from rnnrec.sampling import PopularitySampler

        self._check_config()
        check_training_data(train, valid)
        total_pairs = n_pairs(train)
        if total_pairs == 0:
            raise ValueError(
                "train has no session of 2 or more clicks to learn from; every "
                f"one of its {train.n_sessions} sessions has at most one click"
            )
        if checkpoint_every is not None:
            checkpoint_every = check_positive_int(checkpoint_every, "checkpoint_every")
            if checkpoint is None:
                raise ValueError("checkpoint_every needs a checkpoint path")
        if checkpoint is not None:
            check_folder(checkpoint, "checkpoint")
        saved = None if resume is None else read_checkpoint(resume)
        fingerprinted = checkpoint is not None or saved is not None
        data = data_fingerprint(train) if fingerprinted else None
        if saved is not None:
            check_resumable(saved, self, data)
        if self.n_sample > train.n_items:
            warnings.warn(
                f"n_sample={self.n_sample} is more than the {train.n_items} items "
                "of the catalogue; negatives are drawn with replacement, so most "
                "of them repeat: a smaller n_sample trains as well, and faster",
                stacklevel=2,
            )

        rng = as_rng(self.seed)
        self._build(train.n_items, rng)
        self.item_ids_ = np.asarray(train.item_ids)
        self._index_cache = None
        counts = train.item_counts()
        sampler = PopularitySampler(counts, self.sample_alpha, seed=rng)
        # Log click counts, unnormalised as in GRU4Rec (the normaliser would shift
        # the targets' columns against the samples' ones). Items never clicked in
        # training (possible in synthetic data) are never targets; they get a
        # small count instead of log(0).
        log_p0 = np.log(np.maximum(counts, 1e-3))
        final_act = self.final_act or ("elu-1" if self.loss == "bpr-max" else "linear")
        loss_params = {"bpreg": self.bpreg} if self.loss == "bpr-max" else {}
        loss_fn = get_loss(
            self.loss, final_activation=final_act, backend=self.backend, **loss_params
        )
        optimizer = self._make_optimizer()
        self.history_ = []
        self._checkpoint_at = None  # (path, position) of the last one written
        run, states = TrainingRun(), None
        if saved is not None:
            run, states = restore_checkpoint(
                saved, self, optimizer=optimizer, sampler=sampler, rng=rng
            )
            self._checkpoint_at = (resume, run.where())

        context = TrainingContext(
            train=train,
            valid=valid,
            total_pairs=total_pairs,
            loss_fn=loss_fn,
            log_p0=log_p0,
            sampler=sampler,
            optimizer=optimizer,
            rng=rng,
            checkpoint=checkpoint,
            checkpoint_every=checkpoint_every,
            data=data,
        )
        for epoch in range(run.epochs_done + 1, self.n_epochs + 1):
            self._train_epoch(epoch, context, run, states)
            states = None
        return self

    def _train_epoch(self, epoch, context, run, states):
        """Train one epoch from the position ``run`` (a resumed epoch skips ahead).

        ``run`` is updated as blocks are trained; ``states`` is the recurrent
        state carried into the first block to train (None at the epoch's start).
        """
        from rnnrec.data import session_parallel_batches

        c = context
        start = time.perf_counter() - run.seconds
        progress = progress_bar(
            c.total_pairs, f"epoch {epoch}", self.verbose, unit="event", stacklevel=3
        )
        if progress is not None and run.n_events:
            progress.update(run.n_events)
        batches = session_parallel_batches(
            c.train, self.batch_size, steps=self.bptt, shuffle=False, seed=c.rng
        )
        skipped = run.steps_done
        for step, batch in enumerate(
            itertools.islice(batches, skipped, None), start=skipped + 1
        ):
            states = self._carry(states, batch)
            negatives = c.sampler.sample(self.n_sample)
            loss, grads, states = self._train_block(
                batch, states, negatives, c.loss_fn, c.rng, c.log_p0
            )
            n = int(batch.valid.sum())
            loss_per_event = loss * self.batch_size / n
            if not math.isfinite(loss_per_event):
                self._stop("the loss", loss_per_event, epoch, step, run)
            norm = self._clip(grads)
            if not math.isfinite(norm):
                self._stop("the gradient norm", norm, epoch, step, run)
            c.optimizer.step(grads)

            if norm > run.max_grad_norm:
                run.max_grad_norm = norm
                run.max_grad_epoch, run.max_grad_step = epoch, step
            run.loss_sum += loss * self.batch_size
            run.n_events += n
            run.steps_done = step
            run.total_steps += 1
            if progress is not None:
                progress.update(n)
                progress.set_postfix(loss=f"{run.loss_sum / run.n_events:.4f}")
            if c.checkpoint_every and run.total_steps % c.checkpoint_every == 0:
                run.seconds = time.perf_counter() - start
                self._write_checkpoint(c, run, states)
        if progress is not None:
            progress.close()

        seconds = time.perf_counter() - start
        record = {
            "epoch": epoch,
            "loss": run.loss_sum / max(run.n_events, 1),
            "seconds": seconds,
            "events_per_second": run.n_events / seconds,
        }
        if c.valid is not None:
            from rnnrec.evaluation import evaluate_next_click

            record.update(evaluate_next_click(self, c.valid, cutoffs=(20,)))
        self.history_.append(record)
        log.info(
            "epoch %d  loss %.4f  %.1f s  %.0f events/s",
            epoch,
            record["loss"],
            seconds,
            record["events_per_second"],
        )
        run.epochs_done, run.steps_done = epoch, 0
        run.loss_sum, run.n_events, run.seconds = 0.0, 0, 0.0
        if c.checkpoint is not None:
            self._write_checkpoint(c, run, None)

    def _stop(self, what, value, epoch, step, run):
        """Raise FloatingPointError: where training broke down, and what to do."""
        message = divergence_message(
            self, what, value, epoch, step, run, self._checkpoint_at
        )
        raise FloatingPointError(message)

    def _write_checkpoint(self, context, run, states):
        write_checkpoint(
            context.checkpoint,
            self,
            run,
            optimizer=context.optimizer,
            sampler=context.sampler,
            rng=context.rng,
            states=states,
            data=context.data,
        )
        self._checkpoint_at = (context.checkpoint, run.where())
        log.info("checkpoint at %s: %s", run.where(), context.checkpoint)

    def _carry(self, states, batch):
        """States for the new block: the previous block's rows named by carry."""
        B = batch.inputs.shape[1]
        if states is None:
            return [layer.zero_state(B) for layer in self.layers_]
        return [_take_rows(s, batch.carry) for s in states]

    def _make_optimizer(self):
        from rnnrec import optim

        params = self._param_dict()
        lr, mom, l2 = self.learning_rate, self.momentum, self.l2
        if self.optimizer == "adagrad":
            return optim.AdagradM(params, lr=lr, momentum=mom, weight_decay=l2)
        if self.optimizer == "adam":
            return optim.Adam(params, lr=lr, weight_decay=l2)
        return optim.SGD(params, lr=lr, momentum=mom, weight_decay=l2)

    def _clip(self, grads):
        """Clip the step's gradients if asked; return their global norm before.

        The norm is NaN or infinite when a gradient holds NaN or infinity.
        """
        arrays = [g.values if isinstance(g, RowSparse) else g for g in grads.values()]
        if self.clip_grad_norm is None:
            return global_norm(arrays)
        return clip_grad_norm(arrays, self.clip_grad_norm)

    def _apply(self, grads, optimizer):
        """Clip the step's gradients (if asked) and take one optimizer step.

        Returns the global gradient norm before clipping.
        """
        norm = self._clip(grads)
        optimizer.step(grads)
        return norm

    # -- scoring (the protocol the evaluation loop uses) ------------------------------

    def init_state(self, batch_size):
        """Return zero states for ``batch_size`` session slots.

        Parameters
        ----------
        batch_size : int
            B, >= 1.

        Returns
        -------
        list
            One state per layer.
        """
        self._check_fitted()
        B = check_positive_int(batch_size, "batch_size")
        return [layer.zero_state(B) for layer in self.layers_]

    def carry_state(self, state, carry):
        """Keep the slots named by ``carry`` (new slot b continues old slot carry[b]).

        Parameters
        ----------
        state : list
            From `init_state` or `score_next`.
        carry : numpy.ndarray
            ``(B',)`` int64.

        Returns
        -------
        list
            The new state.
        """
        B = self._state_slots(state)
        if not (
            isinstance(carry, np.ndarray)
            and carry.ndim == 1
            and carry.dtype.kind in "iu"
        ):
            got = (
                f"dtype {carry.dtype.name} and shape {carry.shape}"
                if isinstance(carry, np.ndarray)
                else type(carry).__name__
            )
            raise TypeError(f"carry must be a 1-D integer numpy array (B',), got {got}")
        if len(carry) and (carry.min() < 0 or carry.max() >= B):
            raise ValueError(
                f"carry must hold old slot numbers in [0, {B}), got values from "
                f"{carry.min()} to {carry.max()}"
            )
        return [_take_rows(s, carry) for s in state]

    def score_next(self, state, items, reset):
        """Score every item as the next click of each slot's session.

        Parameters
        ----------
        state : list
            One state per layer, for B slots.
        items : numpy.ndarray
            ``(B,)`` integer item indices in ``[0, V)``, each slot's current click.
        reset : numpy.ndarray
            ``(B,)`` bool, a new session starts at this click.

        Returns
        -------
        scores : numpy.ndarray
            ``(B, V)``.
        state : list
            The updated state.
        """
        self._check_step(state, items, reset)
        h, new_state = self._advance(state, items, reset)
        scores = h @ self.W_y_.T  # (B, V)
        scores += self.b_y_
        return scores, new_state

    def _advance(self, state, items, reset):
        """Feed one click per slot through the layers; return ``(h, state)``.

        ``h`` is the top layer's output ``(B, H)``, which the item scores read.
        """
        x = self._input_table()[items][None]  # (1, B, D)
        new_state = []
        for i, layer in enumerate(self.layers_):
            out, final, _ = layer.forward(
                x, state[i], reset[None], projected=(i == 0 and self.embedding == 0)
            )
            x = out
            new_state.append(final)
        return x[0], new_state

    def _state_slots(self, state):
        """Check that ``state`` has one entry per layer; return its B."""
        self._check_fitted()
        if not isinstance(state, list) or len(state) != len(self.layers_):
            raise TypeError(
                f"state must be the list of {len(self.layers_)} layer state(s) that "
                "init_state, carry_state or score_next returns, got "
                f"{type(state).__name__}"
            )
        first = state[0][0] if isinstance(state[0], tuple) else state[0]
        if not isinstance(first, np.ndarray) or first.ndim != 2:
            raise TypeError("state holds something that is not a layer's state")
        return len(first)

    def _check_step(self, state, items, reset):
        """Check the arguments of `score_next` (the layers check the states)."""
        B = self._state_slots(state)
        if not (isinstance(items, np.ndarray) and items.dtype.kind in "iu"):
            got = items.dtype.name if isinstance(items, np.ndarray) else type(items)
            raise TypeError(
                f"items must be a numpy integer array of item indices, got {got}"
            )
        if items.shape != (B,):
            raise ValueError(
                f"items must have shape ({B},), one click per slot of the state, "
                f"got {items.shape}"
            )
        V = self.n_items
        if B and (items.min() < 0 or items.max() >= V):
            raise ValueError(
                f"items must be item indices in [0, {V}), got values from "
                f"{items.min()} to {items.max()}"
            )
        check_mask(reset, "reset", (B,))

    def _check_fitted(self):
        if not hasattr(self, "layers_"):
            raise RuntimeError("this SessionRecommender is not fitted yet; call fit")

    # -- recommending ---------------------------------------------------------

    def recommend(self, session_items, k=20, exclude_seen=False):
        """Recommend the next items for one session given its clicks so far.

        Items are scored ``SCORE_BLOCK`` at a time, so that the memory used
        beyond the model stays small whatever the size of the catalogue (about
        1 MiB in float32, see `rnnrec.model.ranking`).

        Parameters
        ----------
        session_items : sequence
            The session's clicks, as the user's own item ids, oldest first: a
            list, tuple or 1-D array.
        k : int, default 20
            Number of recommendations, at most the number of items.
        exclude_seen : bool, default False
            Leave out items already clicked in the session (they come last,
            scored ``-inf``, if ``k`` asks for more than the other items).

        Returns
        -------
        items : numpy.ndarray
            ``(k,)`` item ids, best first; equal scores in item-index order.
        scores : numpy.ndarray
            ``(k,)`` their scores.

        Raises
        ------
        ValueError
            If the session is empty, holds ids unknown to the model, or ``k`` is
            out of range.
        TypeError
            If the session is not a sequence of item ids or ``k`` not an int.
        RuntimeError
            If the model is not fitted.
        """
        items, scores = self.recommend_batch(
            [session_items], k=k, exclude_seen=exclude_seen
        )
        return items[0], scores[0]

    def recommend_batch(self, sessions, k=20, exclude_seen=False):
        """Recommend for many sessions at once (see `recommend`).

        Parameters
        ----------
        sessions : sequence of sequences
            Each session's clicks as item ids.
        k : int, default 20
            Number of recommendations per session.
        exclude_seen : bool, default False
            Leave out items already clicked in each session.

        Returns
        -------
        items : numpy.ndarray
            ``(n_sessions, k)`` item ids.
        scores : numpy.ndarray
            ``(n_sessions, k)`` scores.
        """
        self._check_fitted()
        k = check_positive_int(k, "k")
        V = self.n_items
        if k > V:
            raise ValueError(f"k must be at most the number of items ({V}), got {k}")
        encoded = encode_sessions(sessions, self._item_index())
        out_items = np.empty((len(encoded), k), dtype=self.item_ids_.dtype)
        out_scores = np.empty((len(encoded), k), dtype=self.W_y_.dtype)
        for n, clicks in enumerate(encoded):
            state = self.init_state(1)
            reset = np.zeros(1, dtype=bool)
            for item in clicks:
                h, state = self._advance(state, np.array([item]), reset)
            top, scores = top_k_scores(
                h, self.W_y_, self.b_y_, k, exclude=clicks if exclude_seen else None
            )
            out_items[n] = self.item_ids_[top]
            out_scores[n] = scores
        return out_items, out_scores

    def _item_index(self):
        if getattr(self, "_index_cache", None) is None:
            ids = self.item_ids_.tolist()
            self._index_cache = dict(zip(ids, range(len(ids)), strict=True))
        return self._index_cache

    # -- saving and loading ----------------------------------------------------

    def save(self, path):
        """Save the fitted model to one ``.npz`` file (no pickle).

        The file holds the configuration as JSON, the format version, the item
        ids and every parameter array (see `rnnrec.model.saving`). It is written
        to a temporary file that is renamed over ``path``, so an existing file
        is never left half-written.

        Parameters
        ----------
        path : str or os.PathLike
            Destination; ``.npz`` is not appended.
        """
        self._check_fitted()
        write_model(self, path)

    @classmethod
    def load(cls, path):
        """Load a model written by `save` (or a checkpoint), checking what it reads.

        Nothing in the file is unpickled or executed: arrays are read with
        ``allow_pickle=False`` and the configuration is JSON, checked setting
        by setting.

        Parameters
        ----------
        path : str or os.PathLike
            The ``.npz`` file: a saved model, or a checkpoint written by `fit`
            (its parameters, without the training state).

        Returns
        -------
        SessionRecommender
            The fitted model.

        Raises
        ------
        FileNotFoundError
            If the file does not exist.
        ValueError
            If it is not a model file this version reads: truncated or not a
            zip archive, another format version, missing or extra arrays,
            arrays of the wrong shape or dtype or holding NaN, bad settings.
        """
        return read_model(cls, path)


def _uniform(rng, shape, dtype):
    """GRU4Rec's initialisation: ``U(-s, s)`` with ``s = sqrt(6 / (rows + cols))``."""
    bound = np.sqrt(6.0 / (shape[0] + shape[1]))
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


def _row_dropout(x, p, rng):
    """Dropout of whole input rows (a one-hot input is kept or dropped at once)."""
    if p == 0:
        return x, None
    T, B, _ = x.shape
    keep = (rng.random((T, B, 1)) >= p).astype(x.dtype) / x.dtype.type(1 - p)
    return x * keep, keep


def _replace_h(state, h):
    """Return the state with its hidden part replaced by ``h`` (LSTM: ``(h, c)``)."""
    return (h, state[1]) if isinstance(state, tuple) else h


def _take_rows(state, rows):
    if isinstance(state, tuple):
        return tuple(s[rows] for s in state)
    return state[rows]
