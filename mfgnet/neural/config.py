"""Configuration of the neural solver: plain dataclasses, validated at the boundary.

``NeuralSolverConfig.from_dict`` is what the Hydra runner calls with the ``solver`` group
(``conf/solver/neural.yaml``); unknown keys and out-of-range values raise
:class:`~mfgnet.problems.ProblemError` naming the field and its allowed range.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from mfgnet.problems.validation import ProblemError

_INF = math.inf


def _choice(*values: str) -> dict:
    return {"choices": values}


def _range(lo: float, hi: float = _INF, integer: bool = False, lo_open: bool = False) -> dict:
    return {"range": (lo, hi), "integer": integer, "lo_open": lo_open}


@dataclass
class ModelConfig:
    """The two networks u_θ(t, x) and m_φ(t, x) (same architecture, separate weights)."""

    kind: str = field(default="mlp", metadata=_choice("mlp", "resmlp"))
    width: int = field(default=64, metadata=_range(1, 4096, integer=True))
    depth: int = field(default=3, metadata=_range(1, 64, integer=True))
    activation: str = field(default="tanh", metadata=_choice("tanh", "silu", "gelu", "sin", "softplus"))
    # Torus: inputs enter as sin/cos(2πk x / L), k = 1..harmonics (exact periodicity).
    periodic_harmonics: int = field(default=1, metadata=_range(1, 64, integer=True))
    # Random Fourier features of the non-periodic inputs (0 = off).
    fourier_features: int = field(default=0, metadata=_range(0, 4096, integer=True))
    fourier_scale: float = field(default=1.0, metadata=_range(0.0, _INF, lo_open=True))
    init: str = field(default="xavier", metadata=_choice("xavier", "kaiming", "default"))
    # R^d only: add a separable quadratic in x (coefficients affine in t) to both outputs.
    quadratic_skip: bool = True
    # Degree in t̂ of the quadratic's coefficients (4: on B2 at d = 10 the affine choice
    # left m 9e-2 off, too little contraction at mid-times; degree 4 reached 2.8e-2).
    quadratic_time_degree: int = field(default=4, metadata=_range(0, 8, integer=True))
    # Density positive by construction: m = exp(net) or softplus(net).
    density_output: str = field(default="exp", metadata=_choice("exp", "softplus"))
    # u(T, x) = G(x) by the network's form, u = G(x) + (T - t)/T · net, when G is local and does
    # not depend on m (else the terminal loss stays).  Why: with G as a loss term the issue's
    # box problems left u(T) and hence the whole flow 10-80 % off.
    hard_terminal: bool = True
    # m(0, x) = m0(x) by the form (time-dependent, exp output): "log": log m = log m0 + t̂ net
    # (m0 > 0 everywhere); "blend": m = (1 - s) m0 + s exp(net), s = 1 - exp(-t / (τ T)), also
    # for m0 that vanishes somewhere (6x(1 - x)); "auto": log on R^d when min m0 > 0 (a Gaussian
    # m0 and the quadratic skip evolve exactly), else blend (on box_bump_1d blend reached 33 %
    # where log stalled at 73 %, relative FP form); "off": the initial loss.
    hard_initial: str = field(default="auto", metadata=_choice("auto", "log", "blend", "off"))
    # τ of the blend as a fraction of T: small enough that m0 + τT ∂t m(0) > 0 for narrow bumps.
    initial_blend_time: float = field(default=0.05, metadata=_range(0.0, 1.0, lo_open=True))
    # Bounded time-dependent problems: m(t) divided by its quadrature mass at each t (times the
    # mass of m0), so ∫m(t) = 1 to quadrature accuracy at every t (the FP residual includes the
    # normaliser's time derivative).  Why: mass leaked 8 % out of the README box otherwise.
    renormalise: bool = True


@dataclass
class SamplerConfig:
    """Collocation points, drawn fresh every step."""

    kind: str = field(default="uniform", metadata=_choice("uniform", "density", "residual"))
    n_interior: int = field(default=512, metadata=_range(1, 10**7, integer=True))
    n_initial: int = field(default=256, metadata=_range(1, 10**7, integer=True))
    n_terminal: int = field(default=256, metadata=_range(1, 10**7, integer=True))
    n_boundary: int = field(default=128, metadata=_range(1, 10**7, integer=True))
    # Points of the (randomly shifted) periodic grid used for ∫m and ∫u; total, all axes.
    n_quadrature: int = field(default=256, metadata=_range(2, 10**7, integer=True))
    # Time-dependent problems: collocation times per step (points share quadrature per time).
    time_slices: int = field(default=16, metadata=_range(1, 10**5, integer=True))
    # Fraction of the slice-time density that follows the running PDE residual over time (32
    # bins); 0 = uniform stratified times.  Meant for the fast transient of a narrow m0 near
    # t = 0 and the layer of an incompatible G near T; off by default: 0.5 on box_bump_1d
    # left rel L2(m) at 54-70 % after 750 steps where uniform times had 14-20 %.
    time_adaptive: float = field(default=0.0, metadata=_range(0.0, 1.0, lo_open=False))
    # Monte Carlo points per time slice for nonlocal couplings ∫K(x,y) m(t,y) dy.
    n_conv: int = field(default=256, metadata=_range(1, 10**7, integer=True))
    # Grid points per time slice for the mass renormalisation when no nonlocal term needs n_conv
    # (0 = 64 per axis in 1D, 24² in 2D, 12³ in 3D).  Why: its t-derivative is differentiated
    # twice; with 256 points per slice a 1D step cost twice as much, 64 are spectrally accurate.
    n_mass: int = field(default=0, metadata=_range(0, 10**7, integer=True))
    # Adaptive kinds: fraction of the interior points placed by the adaptive rule.
    adaptive_fraction: float = field(default=0.5, metadata=_range(0.0, 1.0))
    refresh_every: int = field(default=50, metadata=_range(1, 10**9, integer=True))
    # Euclidean domains: particles simulated under the current policy to find where m has mass.
    particles: int = field(default=2048, metadata=_range(16, 10**8, integer=True))
    particle_steps: int = field(default=32, metadata=_range(1, 10**5, integer=True))
    # Proposal widening (std factor) around the particle cloud.
    widen: float = field(default=1.5, metadata=_range(1.0, 100.0))
    # Euclidean domains: fraction of points drawn uniformly in problem.bounding_box().
    box_fraction: float = field(default=0.0, metadata=_range(0.0, 1.0))


@dataclass
class OptimConfig:
    training: str = field(default="joint", metadata=_choice("joint", "alternating"))
    alternate_every: int = field(default=1, metadata=_range(1, 10**6, integer=True))
    lr: float = field(default=3e-3, metadata=_range(0.0, 10.0, lo_open=True))
    schedule: str = field(default="cosine", metadata=_choice("constant", "cosine", "exponential"))
    # Learning rate at the last step as a fraction of lr (cosine / exponential).
    final_lr_factor: float = field(default=0.05, metadata=_range(0.0, 1.0, lo_open=True))
    warmup_steps: int = field(default=0, metadata=_range(0, 10**9, integer=True))
    grad_clip: float = field(default=1.0, metadata=_range(0.0, _INF))
    lbfgs_steps: int = field(default=0, metadata=_range(0, 10**6, integer=True))
    lbfgs_lr: float = field(default=1.0, metadata=_range(0.0, 10.0, lo_open=True))
    # "float64": run L-BFGS in double precision even after float32 Adam (dtype="float32"): the
    # line search needs differences of the loss that float32 rounds away near the optimum.
    lbfgs_dtype: str = field(default="float64", metadata=_choice("float64", "same"))


@dataclass
class LossConfig:
    """Loss weights and the forms of the terms."""

    hjb: float = field(default=1.0, metadata=_range(0.0, _INF))
    fp: float = field(default=1.0, metadata=_range(0.0, _INF))
    # Data terms weigh 10: with weight 1 the residual terms won and u(T) stayed 10 % off (B2, B3).
    terminal: float = field(default=10.0, metadata=_range(0.0, _INF))
    initial: float = field(default=10.0, metadata=_range(0.0, _INF))
    boundary: float = field(default=1.0, metadata=_range(0.0, _INF))
    mass: float = field(default=1.0, metadata=_range(0.0, _INF))
    mean_zero: float = field(default=1.0, metadata=_range(0.0, _INF))
    # "grad_norm": gradient-norm balancing after Wang, Teng & Perdikaris (2021): every
    # adapt_every steps each data weight moves towards mean|∇L_pde| / mean|∇L_i|.
    adaptive: str = field(default="none", metadata=_choice("none", "grad_norm"))
    adapt_every: int = field(default=50, metadata=_range(1, 10**9, integer=True))
    adapt_alpha: float = field(default=0.1, metadata=_range(0.0, 1.0, lo_open=True))
    # FP residual divided by m (scale-free; the natural form for m = exp(net)) or raw.
    fp_form: str = field(default="relative", metadata=_choice("relative", "density"))
    # The FP form (and the no-flux flux form) on bounded time-dependent problems; "same" = fp_form.
    # Why "density": on box_bump_1d (hard m(0), u(T)) FP / m stalled at rel L2(m) 33 % (also with
    # FP / (m + floor)), FP · 1 reached 18-20 %; the ergodic torus and R^d keep fp_form, which
    # their benchmarks were tuned on.
    fp_form_bounded: str = field(default="density", metadata=_choice("same", "relative", "density"))
    # m(0) = m0 compared in log (scale-free) or value form; "auto": log for exp output.
    initial_form: str = field(default="auto", metadata=_choice("auto", "log", "value"))
    laplacian: str = field(default="auto", metadata=_choice("auto", "exact", "hutchinson"))
    hutchinson_probes: int = field(default=4, metadata=_range(1, 10**4, integer=True))
    # "auto" uses Hutchinson when d > this.
    hutchinson_above_dim: int = field(default=6, metadata=_range(0, 10**6, integer=True))
    # Ergodic ∫m = 1, ∫u = 0: "hard" divides/shifts by a quadrature each step, "penalty" adds losses.
    normalization: str = field(default="hard", metadata=_choice("hard", "penalty"))
    # Ergodic λ: "projected" = least-squares optimum of the HJB loss each step (no lag);
    # "trainable" = a parameter with its own learning rate lambda_lr.
    lambda_mode: str = field(default="projected", metadata=_choice("projected", "trainable"))
    lambda_lr: float = field(default=5e-2, metadata=_range(0.0, 10.0, lo_open=True))
    # Nonlocal couplings: let gradients flow through ∫K m (else treated as data each step).
    differentiate_conv: bool = True
    # Causal weighting of the time slices (after Wang, Sankaran & Perdikaris 2022), in each
    # equation's own direction: FP slice i weighs exp(-ε Σ_{k<i} L_fp(t_k)) (forward from t = 0),
    # HJB slice i weighs exp(-ε Σ_{k>i} L_hjb(t_k)) (backward from T); weights detached.
    # Off by default: on box_bump_1d (ε = 1) rel L2(m) 18 % against 20 % without, within noise.
    causal: str = field(default="none", metadata=_choice("none", "slices"))
    causal_epsilon: float = field(default=1.0, metadata=_range(0.0, _INF, lo_open=True))


@dataclass
class NeuralSolverConfig:
    """All settings of :func:`mfgnet.neural.solve_neural`."""

    seed: int = field(default=0, metadata=_range(0, 2**63 - 1, integer=True))
    device: str = field(default="auto", metadata=_choice("cpu", "cuda", "auto"))
    dtype: str = field(default="float64", metadata=_choice("float32", "float64"))
    steps: int = field(default=2000, metadata=_range(0, 10**9, integer=True))
    checkpoint_every: int = field(default=500, metadata=_range(1, 10**9, integer=True))
    checkpoint_dir: str | None = None
    resume: bool = False
    verbose: bool = False
    progress: bool = False
    log_every: int = field(default=100, metadata=_range(1, 10**9, integer=True))
    # Final RMS residual under which diagnostics.converged is True.
    tolerance: float = field(default=1e-2, metadata=_range(0.0, _INF, lo_open=True))
    # Fresh evaluation points for the final residual.
    n_eval: int = field(default=2048, metadata=_range(1, 10**8, integer=True))
    on_nonfinite: str = field(default="stop", metadata=_choice("stop", "raise"))
    # CPU intra-op threads during the solve (restored after); 0 leaves torch's setting.  The
    # default 1 is deliberate: PINN-sized ops are too small to split, and on a shared machine
    # two spinning threads per op made a step 15x slower in our measurement.
    cpu_threads: int = field(default=1, metadata=_range(0, 1024, integer=True))
    model: ModelConfig = field(default_factory=ModelConfig)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loss: LossConfig = field(default_factory=LossConfig)

    @classmethod
    def from_dict(cls, d: dict | None) -> NeuralSolverConfig:
        """Build from a (nested) dict such as a Hydra ``solver`` node.

        A ``name`` key equal to ``"neural"`` (the Hydra group tag) is accepted and dropped.
        """
        return _build(cls, dict(d or {}), prefix="")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def replace(self, **overrides: Any) -> NeuralSolverConfig:
        """A validated copy with ``overrides``; nested fields as ``"optim.lr"`` keys or dicts."""
        base = self.to_dict()
        for key, value in overrides.items():
            node = base
            parts = key.split(".")
            for part in parts[:-1]:
                if part not in node or not isinstance(node[part], dict):
                    raise ProblemError(f"unknown neural solver config field {key!r}")
                node = node[part]
            if isinstance(value, dict) and isinstance(node.get(parts[-1]), dict):
                node[parts[-1]] = {**node[parts[-1]], **value}
            else:
                node[parts[-1]] = value
        return NeuralSolverConfig.from_dict(base)


def _build(cls, d: dict, prefix: str):
    if cls is NeuralSolverConfig and "name" in d:
        if d.pop("name") != "neural":
            raise ProblemError("solver.name must be 'neural' for the neural solver config")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - set(fields))
    if unknown:
        raise ProblemError(f"unknown neural solver config field(s) {[prefix + k for k in unknown]}; "
                           f"allowed: {sorted(prefix + k for k in fields)}")
    kwargs = {}
    for name, value in d.items():
        f = fields[name]
        full = prefix + name
        sub = _NESTED.get((cls.__name__, name))
        if sub is not None:
            if isinstance(value, sub):
                value = _build(sub, dataclasses.asdict(value), full + ".")
            elif isinstance(value, dict) or hasattr(value, "items"):
                value = _build(sub, dict(value.items()), full + ".")
            else:
                raise ProblemError(f"{full} must be a mapping of its fields, got {value!r}")
        else:
            value = _check(full, f, value)
        kwargs[name] = value
    return cls(**kwargs)


_NESTED = {("NeuralSolverConfig", "model"): ModelConfig, ("NeuralSolverConfig", "sampler"): SamplerConfig,
           ("NeuralSolverConfig", "optim"): OptimConfig, ("NeuralSolverConfig", "loss"): LossConfig}


def _check(full: str, f: dataclasses.Field, value):
    meta = f.metadata
    if "choices" in meta:
        if value not in meta["choices"]:
            raise ProblemError(f"{full} must be one of {list(meta['choices'])}, got {value!r}")
        return value
    if "range" in meta:
        lo, hi = meta["range"]
        integer = meta["integer"]
        ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
        if isinstance(value, bool) or not ok_type:
            kind = "an integer" if integer else "a number"
            raise ProblemError(f"{full} must be {kind} in {_describe(meta)}, got {value!r}")
        below = value <= lo if meta["lo_open"] else value < lo
        if not math.isfinite(value) and hi != _INF or below or value > hi or math.isnan(value):
            raise ProblemError(f"{full} must lie in {_describe(meta)}, got {value!r}")
        return value if integer else float(value)
    if f.name == "checkpoint_dir":
        if value is not None and not isinstance(value, str):
            if hasattr(value, "__fspath__"):
                return str(value)
            raise ProblemError(f"{full} must be a path string or None, got {value!r}")
        return value
    if not isinstance(value, bool):
        raise ProblemError(f"{full} must be true or false, got {value!r}")
    return value


def _describe(meta: dict) -> str:
    lo, hi = meta["range"]
    left = "(" if meta["lo_open"] else "["
    right = ")" if hi == _INF else "]"
    return f"{left}{lo}, {hi}{right}"
