"""Dimension and variable names of kuralab Datasets (DESIGN.md §4), in one place."""

# Dimensions
TIME = "time"
OSC = "osc"
DIM = "dim"
ROW = "row"
COL = "col"
SEED = "seed"

# Variables
THETA = "theta"
TURNS = "turns"
OMEGA = "omega"
STATE = "x"
R = "R"
PSI = "psi"
Z = "Z"

#: Attribute on a real variable pair marking that it was split from a complex one.
COMPLEX_ATTR = "kuralab_complex_part"

UNITS = {
    TIME: ("1", "time (dimensionless model time)"),
    THETA: ("rad", "oscillator phase, wrapped to [-pi, pi)"),
    TURNS: ("1", "winding number: unwrapped phase = theta + 2 pi turns"),
    OMEGA: ("rad/time", "natural frequency omega"),
    STATE: ("1", "oscillator state (unit vector)"),
    R: ("1", "Kuramoto order parameter |Z|"),
    PSI: ("rad", "mean phase arg Z"),
    Z: ("1", "complex Kuramoto order parameter Z = mean exp(i theta)"),
}

# Sweep and study dimensions (one per swept parameter is named after the parameter)
N = "n"
DIRECTION = "direction"

# Reductions of `kl.sweep` and studies: one name per quantity in both, and in files
R_STD = "R_std"
R_T = "R_t"
OMEGA_EFF = "Omega"
OMEGA_STD = "Omega_std"
OMEGA_Z = "Omega_Z"
PSI_T = "psi_t"
LOCKED = "locked"
ENERGY = "energy"
ENERGY_T = "energy_t"
FINAL = "final"
TRAJECTORY = "trajectory"
RESULT = "result"
LYAPUNOV = "lyapunov"
LYAPUNOV_STDERR = "lyapunov_stderr"
