"""The planar three-body problem as in Breen et al. 2019, "Newton vs the machine".

Three equal masses (m = 1, G = 1) start at rest. The barycentre is the origin and the unit of
length the distance of the farthest particle, which sits at x1 = (1, 0); the particle closest to
the barycentre starts at x2 = (a, b) with b >= 0, and x3 = -x1 - x2. That confines x2 to the
region a in (-0.5, 0], (1 + a)^2 + b^2 <= 1 (|x2| <= |x3| <= |x1|).

A network learns (t, a, b) -> the six coordinates at time t. The training data comes from
scipy's DOP853 at tight tolerance; each trajectory's relative energy error must stay within
`ENERGY_TOLERANCE` or it is redrawn (the close encounters this problem is full of are where a
fixed-precision integrator loses accuracy), so the network never learns integration error.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.integrate import solve_ivp

from stages.common import StageError
from stages.datasets.table import Table

FEATURES = ["t", "x2_0", "y2_0"]
TARGETS = ["x1", "y1", "x2", "y2", "x3", "y3"]
RTOL = 1e-11
ATOL = 1e-11
ENERGY_TOLERANCE = 1e-6  # max |E(t) - E(0)| / |E(0)| over a kept trajectory


@dataclass
class Trajectory:
    times: np.ndarray  # [steps]
    positions: np.ndarray  # [steps, 6]
    energy_error: float  # max relative energy error
    evaluations: int  # right-hand-side evaluations the integrator needed


def _acceleration(state: np.ndarray) -> np.ndarray:
    x1, y1, x2, y2, x3, y3 = state[:6]
    dx12, dy12 = x2 - x1, y2 - y1
    dx13, dy13 = x3 - x1, y3 - y1
    dx23, dy23 = x3 - x2, y3 - y2
    c12 = (dx12 * dx12 + dy12 * dy12) ** -1.5
    c13 = (dx13 * dx13 + dy13 * dy13) ** -1.5
    c23 = (dx23 * dx23 + dy23 * dy23) ** -1.5
    return np.array(
        [
            dx12 * c12 + dx13 * c13,
            dy12 * c12 + dy13 * c13,
            -dx12 * c12 + dx23 * c23,
            -dy12 * c12 + dy23 * c23,
            -dx13 * c13 - dx23 * c23,
            -dy13 * c13 - dy23 * c23,
        ]
    )


def _rhs(_t: float, state: np.ndarray) -> np.ndarray:
    return np.concatenate([state[6:], _acceleration(state)])


def energy(states: np.ndarray) -> np.ndarray:
    """Total energy of states `[n, 12]` (positions then velocities)."""
    p = states[:, :6].reshape(-1, 3, 2)
    v = states[:, 6:].reshape(-1, 3, 2)
    kinetic = 0.5 * (v**2).sum(axis=(1, 2))
    potential = -(
        1 / np.linalg.norm(p[:, 0] - p[:, 1], axis=1)
        + 1 / np.linalg.norm(p[:, 0] - p[:, 2], axis=1)
        + 1 / np.linalg.norm(p[:, 1] - p[:, 2], axis=1)
    )
    return np.asarray(kinetic + potential)


def initial_state(a: float, b: float) -> np.ndarray:
    return np.array([1.0, 0.0, a, b, -1.0 - a, -b] + [0.0] * 6)


def integrate(a: float, b: float, times: np.ndarray) -> Trajectory | None:
    """Positions at `times` for x2 starting at (a, b); None if the integrator gave up."""
    solution = solve_ivp(
        _rhs,
        (0.0, float(times[-1])),
        initial_state(a, b),
        method="DOP853",
        t_eval=times,
        rtol=RTOL,
        atol=ATOL,
    )
    if solution.status != 0 or solution.y.shape[1] != len(times):
        return None
    states = solution.y.T
    e = energy(states)
    error = float(np.max(np.abs(e - e[0]) / abs(e[0])))
    return Trajectory(times, states[:, :6], error, int(solution.nfev))


def sample_start(rng: np.random.Generator) -> tuple[float, float]:
    """A uniform draw of x2 from the allowed region (rejection sampling)."""
    while True:
        a = rng.uniform(-0.5, 0.0)
        b = rng.uniform(0.0, 1.0)
        if (1.0 + a) ** 2 + b**2 <= 1.0 and a > -0.5:
            return a, b


def generate(
    simulations: int,
    time_steps: int,
    duration: float,
    seed: int,
    progress: Callable[[int, int, int], None] | None = None,
) -> Table:
    """`simulations` trajectories of `time_steps` points; `progress(done, simulations, rejected)`
    after each one kept (the integration is most of a prepare step's time)."""
    if time_steps < 2 or duration <= 0:
        raise StageError("three-body needs time-steps >= 2 and a positive duration")
    rng = np.random.default_rng(seed)
    times = np.linspace(0.0, duration, time_steps)
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    groups: list[np.ndarray] = []
    rejected, worst, attempts = 0, 0.0, 0
    while len(xs) < simulations:
        attempts += 1
        if attempts > 20 * simulations + 20:
            raise StageError(f"three-body: {rejected} of {attempts} trajectories rejected; shorten duration")
        a, b = sample_start(rng)
        trajectory = integrate(a, b, times)
        if trajectory is None or trajectory.energy_error > ENERGY_TOLERANCE:
            rejected += 1
            continue
        worst = max(worst, trajectory.energy_error)
        xs.append(np.column_stack([times, np.full(time_steps, a), np.full(time_steps, b)]))
        ys.append(trajectory.positions)
        groups.append(np.full(time_steps, len(groups)))
        if progress is not None:
            progress(len(xs), simulations, rejected)
    return Table(
        x=np.concatenate(xs),
        y=np.concatenate(ys),
        feature_names=list(FEATURES),
        target_names=list(TARGETS),
        groups=np.concatenate(groups),
        parameters={
            "simulations": simulations,
            "time_steps": time_steps,
            "duration": duration,
            "seed": seed,
            "integrator": {"method": "DOP853", "rtol": RTOL, "atol": ATOL},
            "energy_tolerance": ENERGY_TOLERANCE,
            "max_energy_error": worst,
            "rejected_trajectories": rejected,
        },
    )


def truth(x: np.ndarray) -> np.ndarray:
    """Integrate each probe row (t, a, b); rows the integrator cannot finish give NaN."""
    rows = np.asarray(x, dtype=np.float64)
    out = np.full((len(rows), len(TARGETS)), np.nan)
    for i, (t, a, b) in enumerate(rows):
        if t <= 0:
            out[i] = initial_state(a, b)[:6]
            continue
        trajectory = integrate(a, b, np.array([0.0, t]))
        if trajectory is not None:
            out[i] = trajectory.positions[-1]
    return out
