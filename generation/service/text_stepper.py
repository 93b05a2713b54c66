"""The character LSTM rearranged to step many rows one character at a time, and the row-wise sampler."""

from __future__ import annotations

import logging

import numpy as np
import torch

from generation.models.lstm import CharLSTM
from generation.service.packed import PROBE_ROWS, PackedLinear, compute_dtype

log = logging.getLogger(__name__)


def _gates_ifog(tensor: torch.Tensor, hidden_size: int) -> torch.Tensor:
    """nn.LSTM stacks its gates as input, forget, cell, output. Put the three sigmoid gates first and
    double the cell candidate's rows: tanh(x) = 2 sigmoid(2x) - 1, and torch's CPU sigmoid is much
    faster per element than its tanh, so one sigmoid call then covers all four gates."""
    i, f, g, o = tensor.split(hidden_size)
    return torch.cat([i, f, o, 2.0 * g])


class CharStepper:
    """A trained CharLSTM rearranged to produce one character at a time for many rows at once.

    The first layer's input projection (embedding @ W_ih + both biases) becomes a table with one row
    per character; each upper layer runs one matrix product over [input, hidden]; UNK's output bias is
    -inf, so sampling never sees it. Matrix products run in `dtype`, gates and memory in float32.
    """

    def __init__(
        self,
        model: CharLSTM,
        device: torch.device,
        dtype: torch.dtype | None = None,
        packed_output: bool = True,
    ) -> None:
        rnn = model.rnn
        if rnn.bidirectional or rnn.proj_size:
            raise ValueError("only a unidirectional nn.LSTM without projections can be stepped")
        self.dtype = dtype or compute_dtype(device)
        self.hidden_size = size = rnn.hidden_size
        self.layers = rnn.num_layers
        self.device = device

        def weights(layer: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            w_ih = getattr(rnn, f"weight_ih_l{layer}").detach().float()
            w_hh = getattr(rnn, f"weight_hh_l{layer}").detach().float()
            bias = torch.zeros(4 * size, device=w_ih.device)
            if rnn.bias:
                bias = (
                    getattr(rnn, f"bias_ih_l{layer}").detach().float()
                    + getattr(rnn, f"bias_hh_l{layer}").float()
                )
            return _gates_ifog(w_ih, size), _gates_ifog(w_hh, size), _gates_ifog(bias, size)

        w_ih, w_hh, bias = weights(0)
        embedding = model.embed.weight.detach().float()
        self.input_gates = torch.addmm(bias, embedding, w_ih.T).to(device).contiguous()
        self.recurrent = PackedLinear(w_hh, None, self.dtype, device)
        self.upper = []
        for layer in range(1, self.layers):
            w_ih, w_hh, bias = weights(layer)
            self.upper.append(PackedLinear(torch.cat([w_ih, w_hh], dim=1), bias, self.dtype, device))
        self.project: PackedLinear | None = None
        self.output: PackedLinear | None = None
        self.model_logits = model.logits
        self.vocab_size = model.config.vocab_size
        if packed_output:
            if model.config.tie_embeddings:
                self.project = PackedLinear(model.project.weight, model.project.bias, self.dtype, device)
                out_weight, out_bias = embedding, model.output_bias.detach().float().clone()
            else:
                out_weight, out_bias = (
                    model.head.weight.detach().float(),
                    model.head.bias.detach().float().clone(),
                )
            out_bias[0] = float("-inf")  # never produce UNK
            self.output = PackedLinear(out_weight, out_bias, self.dtype, device)

    def new_state(self, rows: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Zero (hidden, memory), each (layers, rows, hidden) in float32, like nn.LSTM's state."""
        shape = (self.layers, rows, self.hidden_size)
        return torch.zeros(shape, device=self.device), torch.zeros(shape, device=self.device)

    def _cell(self, gates: torch.Tensor, memory: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        """LSTM cell update from pre-activation gates (i, f, o, 2g); `memory` is updated in place and the
        new hidden state is written into `hidden`, which is returned."""
        size = self.hidden_size
        gates = gates.sigmoid_()
        inputs, forget, output, candidate = gates.split(size, dim=1)
        memory.mul_(forget).addcmul_(inputs, candidate, value=2.0).sub_(inputs)  # f c + i tanh(g)
        squashed = torch.sigmoid(memory * 2.0)
        return torch.addcmul(output.neg(), output, squashed, value=2.0, out=hidden)  # o tanh(c)

    def advance(self, ids: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """Feed one character to the first len(ids) rows of `state` (updated in place); returns the top
        layer's new hidden state for those rows."""
        rows = ids.shape[0]
        hidden, memory = state
        gates = self.input_gates.index_select(0, ids)
        gates += self.recurrent(hidden[0, :rows].to(self.dtype))
        below = self._cell(gates, memory[0, :rows], hidden[0, :rows])
        for layer, linear in enumerate(self.upper, start=1):
            joined = torch.cat([below, hidden[layer, :rows]], dim=1).to(self.dtype)
            below = self._cell(linear(joined).float(), memory[layer, :rows], hidden[layer, :rows])
        return below

    def logits(self, top_hidden: torch.Tensor) -> torch.Tensor:
        """Next-character logits in float32, UNK's -inf, from the top layer's hidden state."""
        if self.output is None:  # the model's own output layer
            logits = self.model_logits(top_hidden).float().clone()
            logits[:, 0] = float("-inf")
            return logits
        inputs = top_hidden.to(self.dtype)
        if self.project is not None:
            inputs = self.project(inputs)
        return self.output(inputs).float()


def text_stepper(model: CharLSTM, device: torch.device) -> CharStepper:
    """A stepper for `model`, checked in float32 against the model's own nn.LSTM and `logits`; an
    output layer it does not know is used as it is (slower, and not bit-identical across batches)."""
    probe = torch.Generator().manual_seed(0)
    ids = torch.randint(1, model.config.vocab_size, (2, PROBE_ROWS), generator=probe).to(device)
    outputs, _ = model.rnn(model.embed(ids))
    expected = model.logits(outputs[:, -1]).float()
    packed_output = True
    try:
        exact = CharStepper(model, device, torch.float32)
    except AttributeError as exc:
        log.warning("text generator: using the model's own output layer (%s)", exc)
        exact, packed_output = CharStepper(model, device, torch.float32, packed_output=False), False
    state = exact.new_state(2)
    for position in range(ids.shape[1]):
        top = exact.advance(ids[:, position], state)
    if not torch.allclose(top, outputs[:, -1], atol=1e-4, rtol=1e-4):
        raise ValueError("the LSTM does not compute what a plain nn.LSTM with its weights computes")
    if packed_output and not torch.allclose(exact.logits(top)[:, 1:], expected[:, 1:], atol=1e-3, rtol=1e-3):
        log.warning("text generator: using the model's own output layer (the packed one differs)")
        packed_output = False
    return CharStepper(model, device, compute_dtype(device), packed_output=packed_output)


def _sort_rows(probs: torch.Tensor) -> torch.Tensor:
    """Each row's values in ascending order (numpy's sort is faster than torch's on the CPU)."""
    if probs.device.type == "cpu":
        return torch.from_numpy(np.sort(probs.numpy(), axis=-1))
    return probs.sort(dim=-1).values


def _first_matches(probs: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """Each row's first id whose probability equals the row's value (numpy's comparison and argmax are
    several times faster than torch's on the CPU for these shapes)."""
    if probs.device.type == "cpu":
        return torch.from_numpy((probs.numpy() == values.numpy()).argmax(axis=1))
    return (probs == values).view(torch.uint8).argmax(dim=1)


def sample_ids(
    logits: torch.Tensor,
    uniforms: torch.Tensor,
    inverse_temperature: torch.Tensor,
    top_p: torch.Tensor,
    top_k: torch.Tensor | None = None,
) -> torch.Tensor:
    """One id per row: temperature, the nucleus (top-p) and top-k cuts, then the inverse CDF at the
    row's own uniform number, so a row's pick never depends on the other rows.

    Works on the sorted probabilities (values only: sorting ids too costs far more), keeping
    the most probable ranks until they reach top_p, the one crossing it included, and at most top_k;
    the drawn rank's value then finds its id. `logits` (rows, vocab), overwritten, must give UNK (id 0)
    -inf, so the smallest rank always holds a zero. `inverse_temperature`, `top_p` and `top_k` are
    (rows, 1); `top_k` holds the vocabulary size for rows without a top-k cut.
    """
    probs = torch.softmax(logits.mul_(inverse_temperature), dim=-1)
    vocab = probs.shape[1]
    ascending = _sort_rows(probs)
    mass = ascending.cumsum(dim=-1)
    total = mass[:, -1:]
    # Ranks whose mass ranked above them (total - mass) is at least top_p fall outside the nucleus.
    dropped = torch.searchsorted(mass, total - top_p, right=True)
    if top_k is not None:
        dropped = torch.maximum(dropped, vocab - top_k)
    dropped.clamp_(min=1, max=vocab - 1)  # rank 0 is UNK's zero: dropping it changes nothing
    below = mass.gather(1, dropped - 1)
    ranks = torch.searchsorted(mass, torch.addcmul(below, uniforms.unsqueeze(1), total - below), right=True)
    values = ascending.gather(1, ranks.clamp_(max=vocab - 1))
    picks = _first_matches(probs, values)
    # Equal probabilities share a value: the k-th of the tied ranks is the k-th tied id.
    repeats = ranks - torch.searchsorted(ascending, values)
    if bool(repeats.any()):
        picks = ((probs == values).cumsum(dim=1) > repeats).view(torch.uint8).argmax(dim=1)
    return picks
