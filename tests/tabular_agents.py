"""Tabular agents on an exact replay buffer, for known-answer tests under bootstrapping.

Tabular DQN: observations are ``Discrete(n)`` (SB3 one-hot encodes them) and ``net_arch=[]`` makes
every channel's Q linear in the one-hot: a table plus one bias per (channel, action), shared by the
states. The bias does not move the fixed point (each table entry still zeroes its own expected
gradient). The replay buffer holds an MDP's one-step law in exact proportions, so uniform replay
samples the true law and what a test sees is the rule, not the luck of the draw.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from stable_baselines3.common.logger import Logger

from agents.dopamine_dqn import DopamineDQN


class Transition(NamedTuple):
    state: int
    action: int
    reward: float
    next_state: int
    terminated: bool
    count: int  # copies in the buffer: proportional to the outcome's probability


def counts(probability: float, per: int) -> int:
    count = round(probability * per)
    assert abs(count - probability * per) < 1e-9, f"{probability} is not a multiple of 1/{per}"
    return count


def tabular_dqn(env, dopamine: dict, law: list[Transition], *, gamma: float, seed: int = 0, lr: float = 0.05,
                lr_floor: float = 0.02, batch_size: int = 1024, **kwargs) -> DopamineDQN:
    """A tabular DopamineDQN whose replay buffer holds ``law`` in exact proportions."""
    model = DopamineDQN(
        "MlpPolicy", env, policy_kwargs={"net_arch": []}, neuro={"dopamine": dopamine}, gamma=gamma,
        learning_rate=lambda progress: lr * max(progress, lr_floor), buffer_size=sum(t.count for t in law),
        learning_starts=0, batch_size=batch_size, target_update_interval=1, exploration_initial_eps=1.0,
        exploration_final_eps=1.0, seed=seed, device="cpu", **kwargs,
    )
    model.set_logger(Logger(None, []))
    for t in law:
        for _ in range(t.count):
            model.replay_buffer.add(np.array([t.state]), np.array([t.next_state]), np.array([t.action]),
                                    np.array([t.reward]), np.array([t.terminated]), [{}])
    assert model.replay_buffer.full
    return model


def fit(model: DopamineDQN, gradient_steps: int, steps_per_sync: int = 5) -> None:
    """``gradient_steps`` of the real ``train()``, the target network synced every ``steps_per_sync``."""
    chunks = gradient_steps // steps_per_sync
    for chunk in range(chunks):
        model._current_progress_remaining = 1.0 - chunk / chunks  # the schedule's clock, as learn() keeps it
        model.train(steps_per_sync, model.batch_size)
        model._on_step()  # SB3's target update (every call with target_update_interval=1)


def q_table(model: DopamineDQN, n_states: int) -> np.ndarray:
    """Every channel's Q-values of every state: (states, channels, actions)."""
    with torch.no_grad():
        return model.q_net.all_channels(torch.arange(n_states)).numpy().astype(np.float64)


