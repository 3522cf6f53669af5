"""SB3 algorithms wired to NeuroDrive's parts: the algorithm registry and ``build``
(``agents.registry``), DQN and PPO with neuro parts (``dopamine_dqn``, ``dopamine_ppo``), feature
extractors, training callbacks and neuro logging. Import from the module that owns a name."""
