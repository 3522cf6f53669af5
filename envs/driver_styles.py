"""highway-env's aggressive and defensive drivers, kept aggressive and defensive in every scenario.

highway-env's ``AggressiveVehicle`` and ``DefensiveVehicle`` differ only in their class-level
``ACCELERATION_PARAMETERS``, and ``LinearVehicle.randomize_behavior`` (called on every other vehicle by
highway, highway-fast, roundabout and the rest) replaces those with a draw from ``LinearVehicle``'s one
``ACCELERATION_RANGE``: after it the two drive alike (the same seed gave identical episodes). These keep
their class's parameters and randomise only what ``IDMVehicle`` randomises (the acceleration exponent
``DELTA``). Imported by highway-env from ``other_vehicles_type`` (``envs.drivers.DRIVERS``), in the env's
own process; kept apart from ``envs.drivers`` so the config check does not import highway-env.
"""

from __future__ import annotations

from highway_env.vehicle.behavior import AggressiveVehicle, DefensiveVehicle, IDMVehicle

__all__ = ["AggressiveDriver", "DefensiveDriver"]


class AggressiveDriver(AggressiveVehicle):
    """``AggressiveVehicle`` whose acceleration parameters stay the class's through ``randomize_behavior``."""

    def randomize_behavior(self) -> None:
        IDMVehicle.randomize_behavior(self)


class DefensiveDriver(DefensiveVehicle):
    """``DefensiveVehicle`` whose acceleration parameters stay the class's through ``randomize_behavior``."""

    def randomize_behavior(self) -> None:
        IDMVehicle.randomize_behavior(self)
