r"""Figure: noise-induced synchronisation of uncoupled identical oscillators by common
noise, against the weak-noise theory.

    python analysis/common_noise.py data/runs/common_noise.nc --out data/runs/common_noise.png

Reads the result of `python studies/common_noise.py` and draws

- left: the pair synchrony rho = <cos(theta_i - theta_j)> against the common fraction c
  (mean over seeds, error bars one standard error of the seeds' values) with the theory
  (1 - sqrt(1 - c^2)) / c;
- middle: the density of the pair phase difference for a few c against
  P(phi) = sqrt(1 - c^2) / (2 pi (1 - c cos phi));
- right: the Lyapunov exponent under fully common noise against D, with -D/2.

Theory (weak noise). Each oscillator obeys the Stratonovich SDE
d theta_i = omega dt + sigma Z(theta_i) o dW_i, sigma^2 = 2 D, with E[dW_1 dW_2] = c dt.

- c = 1: the phase difference obeys d ln phi = sigma Z'(theta) o dW, in Ito form
  sigma Z' dW + (sigma^2 / 2) Z Z'' dt, so lambda = (sigma^2/2) <Z Z''> = -(sigma^2/2)
  <Z'^2> (by parts, theta uniform to O(sigma^2 / omega)); Z = sin: -sigma^2/4 = -D/2.
- c < 1: in Ito form phi has drift (sigma^2/2)[Z Z'(theta + phi) - Z Z'(theta)], zero on
  average over the fast uniform theta, and variance rate
  sigma^2 [Z(theta+phi)^2 + Z(theta)^2 - 2 c Z(theta+phi) Z(theta)], on average
  2 sigma^2 [g(0) - c g(phi)] with g(phi) = <Z(theta) Z(theta + phi)>. The averaged
  Fokker--Planck equation dP/dt = sigma^2 d^2/dphi^2 {[g(0) - c g(phi)] P} has the
  zero-flux stationary density P ~ 1 / (g(0) - c g(phi)) (Nakao, Arai & Kawamura 2007).
  Z = sin: g = cos(phi) / 2, P = sqrt(1 - c^2) / (2 pi (1 - c cos phi)), a wrapped
  Cauchy (Poisson-kernel) density with 1 - 2 r cos phi + r^2 ~ 1 - c cos phi, i.e.
  c = 2 r / (1 + r^2), whose mean <cos phi> = r = (1 - sqrt(1 - c^2)) / c.

Prints per c the measured rho, its standard error and the theory, and the largest
|sim - theory| in units of the standard error.
"""

from __future__ import annotations

import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from _script import figure_main  # noqa: E402

import kuralab as kl  # noqa: E402


def summarise(path) -> dict:
    ds = kl.io.load(path)
    if not {"rho", "rho_theory", "phi_hist", "lyapunov"} <= set(ds.variables):
        raise SystemExit(f"error: {path}: not a common_noise result")
    seeds = ds.sizes["seed"]
    rho = ds.rho.values
    hist = ds.phi_hist.values.sum(axis=1).astype(float)
    width = 2 * np.pi / ds.sizes["phi"]
    density = hist / hist.sum(axis=1, keepdims=True) / width
    lam = ds.lyapunov.values
    return dict(
        c=ds.common.values, rho=rho.mean(1), rho_se=rho.std(1, ddof=1) / np.sqrt(seeds),
        theory=ds.rho_theory.values, phi=ds.phi.values, density=density,
        D=ds.D.values, lam=lam.mean(1), lam_se=lam.std(1, ddof=1) / np.sqrt(seeds),
        lam_theory=ds.lyapunov_theory.values, attrs=dict(ds.attrs), seeds=seeds,
    )


def figure(s: dict):
    fig, (a, b, d) = plt.subplots(1, 3, figsize=(11, 3.4))
    cc = np.linspace(0, 1, 201)
    from_theory = np.asarray(kl.theory.common_noise_synchrony(cc))
    a.plot(cc, from_theory, "k-", lw=1, label="(1 - sqrt(1 - c^2)) / c")
    a.errorbar(s["c"], s["rho"], yerr=s["rho_se"], fmt="o", ms=3, color="C0",
               label=f"simulation ({s['seeds']} seeds, N = {s['attrs']['n_osc']})")
    a.set_xlabel("common fraction c")
    a.set_ylabel("<cos(theta_i - theta_j)>")
    a.legend(fontsize=7, frameon=False)
    a.set_title(f"Z = sin, D = {s['attrs']['D_sync']:g}, omega = {s['attrs']['omega']:g}",
                fontsize=9)
    for j, c in enumerate(c for c in (0.4, 0.8, 0.95) if c in s["c"]):
        i = int(np.argmin(np.abs(s["c"] - c)))
        b.plot(s["phi"], s["density"][i], ".", ms=3, color=f"C{j}", label=f"c = {c:g}")
        b.plot(s["phi"], np.asarray(kl.theory.common_noise_phase_density(s["phi"], c)),
               "-", lw=1, color=f"C{j}")
    b.set_xlabel("phase difference phi")
    b.set_ylabel("density (lines: Nakao et al. 2007)")
    b.legend(fontsize=7, frameon=False)
    d.errorbar(s["D"], s["lam"], yerr=s["lam_se"], fmt="o", ms=4,
               label="kl.lyapunov_exponents")
    dd = np.linspace(0, s["D"].max() * 1.1, 50)
    d.plot(dd, np.asarray(kl.theory.common_noise_lyapunov(dd)), "k-", lw=1,
           label="-sigma^2/4 = -D/2")
    d.set_xlabel("D (sigma^2 = 2 D)")
    d.set_ylabel("Lyapunov exponent, c = 1")
    d.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    return fig


def table(s: dict) -> str:
    lines = [f"solver {s['attrs']['solver']}, N = {s['attrs']['n_osc']}, "
             f"{s['seeds']} seeds, D = {s['attrs']['D_sync']:g}, window "
             f"{s['attrs']['window']:g} after {s['attrs']['burn_in']:g}",
             "    c     rho     SE   theory   (rho - theory) / SE"]
    for c, r, e, t in zip(s["c"], s["rho"], s["rho_se"], s["theory"], strict=True):
        lines.append(f"{c:5.2f}  {r:6.4f}  {e:6.4f}  {t:6.4f}  {(r - t) / e:+6.2f}")
    dev = np.abs(s["rho"] - s["theory"])
    i = int(np.argmax(dev))
    lines.append(f"max |rho - theory| = {dev[i]:.4f} at c = {s['c'][i]:g} "
                 f"(SE {s['rho_se'][i]:.4f})")
    for D, lam, se, th in zip(s["D"], s["lam"], s["lam_se"], s["lam_theory"], strict=True):
        lines.append(f"lambda(D = {D:g}) = {lam:.5f} +- {se:.5f}  (theory {th:.5f})")
    return "\n".join(lines)


def main(argv=None) -> int:
    return figure_main(__doc__, "data/runs/common_noise.nc", summarise, figure, table,
                       argv)


if __name__ == "__main__":
    sys.exit(main())
