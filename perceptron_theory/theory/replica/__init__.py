r"""Replica-symmetric theory of a perceptron student trained on a noisy teacher.

This is the saddle point of Luo et al. (2019), App. D.2, eq. (19), written for a
student with an explicit decay on its length ("WN + gamma decay"), solved numerically
where no closed form exists -- in particular for the ReLU student with gamma decay,
which Luo et al. (Sec. 4.1) leave open.

Conventions (README notation table)
-----------------------------------
* Inputs :math:`x \sim N(0, I/N)`, teacher :math:`w^*` with :math:`|w^*|^2 = N`, teacher
  field :math:`t = w^*\cdot x \sim N(0, 1)`, teacher output
  :math:`y = g^*(t) + \sqrt{S}\,\xi` (``teacher`` = :math:`g^*` in {linear, relu}; linear is
  Luo et al.'s Sec. 4 setting; ``noise`` = :math:`S`).
* Student field :math:`s = w\cdot x`, output :math:`g(s)` (``student`` = :math:`g` in
  {linear, relu}).
* Energy, **sum convention, halved loss**:

  .. math::

      E(w) = \frac12\sum_{p=1}^{P}\bigl(y_p - g(w\cdot x_p)\bigr)^2 + \frac{\zeta}{2}|w|^2 .

  For a normalized student :math:`w = \gamma\sqrt N\,u` (:math:`|u| = 1`) the decay is
  exactly :math:`(\zeta N/2)\gamma^2`: "WN + gamma decay". A per-sample (mean) loss
  :math:`\frac1P\sum_p \frac12(y_p - g)^2 + \frac{\zeta_{\rm ps}}2\gamma^2` (the package's
  ``decay2`` convention; equivalently Luo et al.'s :math:`\ell_{wn} = \frac1P\sum_p(y_p -
  g)^2 + \zeta_{\rm ps}\gamma^2`) has the same minimizer as ``zeta`` :math:`= \alpha\,
  \zeta_{\rm ps}` here
  (:func:`perceptron_theory.theory.generalization.sum_decay_from_per_sample`).
* Gibbs measure :math:`\propto e^{-\beta E(w)}\,dw` (flat measure; the decay is the
  Gaussian prior). :math:`\beta\to\infty` is exhaustive training: the global minimizer.
* Order parameters: :math:`Q = |w|^2/N` (:math:`=\gamma^2`), :math:`T = w\cdot w^*/N`
  (:math:`=\gamma R`), replica overlap :math:`q` (finite :math:`\beta`) and
  :math:`x = \beta(Q - q)` (finite as :math:`\beta\to\infty`).
* Test error :math:`\epsilon = E[(g^*(t) - g(s))^2]` (unhalved, no label noise),
  :func:`perceptron_theory.theory.integrals.eps_gen` at :math:`(\gamma, R)`; linear
  teacher: :math:`1 + \gamma^2 - 2\gamma R` (linear student),
  :math:`1 + \gamma^2/2 - \gamma R` (ReLU student).

Derivation (replica-symmetric)
------------------------------
:math:`-\beta f = \lim_N \frac1N E\ln Z`, :math:`Z = \int dw\,e^{-\beta E(w)}`, by the replica
trick. Given the overlaps, the fields :math:`(t, s^1, \dots, s^n)` of a fresh pattern are
jointly Gaussian; with the replica-symmetric ansatz
:math:`s^a = \omega + \sqrt{Q - q}\,z_a`, :math:`\omega = T t + \sqrt{q - T^2}\,z_0`.
The volume of the weights with the given overlaps is
:math:`\exp\{\frac{nN}2\ln(2\pi e) + \frac N2\ln\det(Q_{ab} - T^2)\}` and
:math:`\ln\det = n\ln(Q-q) + n\frac{q-T^2}{Q-q} + O(n^2)`. Hence

.. math::

    -\beta f = \frac12\ln(2\pi e) + \frac12\Bigl[\ln(Q - q) + \frac{q - T^2}{Q - q}\Bigr]
        - \frac{\beta\zeta}{2}Q
        + \alpha\,E_{t,\xi,z_0}\ln\int Dz\,e^{-\frac\beta2\,(y - g(\omega + \sqrt{Q-q}\,z))^2},

stationary in :math:`(Q, q, T)`. Symbol map to Luo et al. eq. (19), whose prior fixes
the length: their :math:`(q^2, \gamma^2, \gamma R)` are our :math:`(Q, q, T)` -- their
:math:`q` is "the prior value of :math:`\gamma`" (:math:`|w|^2 = Nq^2`), their
:math:`\gamma^2` the overlap of two replicas, and their entropic term
:math:`\frac12\frac{\gamma^2 - \gamma^2R^2}{q^2-\gamma^2} + \frac12\ln(q^2-\gamma^2)` is the
bracket above. With a decay instead of a spherical prior :math:`Q` is free and the
:math:`-\beta\zeta Q/2` term selects it. Their :math:`a = \beta(q^2-\gamma^2)/(1 +
\beta(q^2-\gamma^2))` is our :math:`x/(1+x)`.

*Linear student, finite* :math:`\beta`: the inner integral is Gaussian,
:math:`-\frac1\beta E\ln\int Dz\ldots = \frac{1}{2\beta}\ln(1+\beta\Delta) +
\frac{E(y-\omega)^2}{2(1+\beta\Delta)}`, :math:`\Delta = Q - q`,
:math:`E(y-\omega)^2 = m_2 - 2cT + q` with :math:`m_2 = E y^2`, :math:`c = E[yt]`
(linear teacher: :math:`1+S, 1`; ReLU teacher: :math:`\frac12+S, \frac12`). This is exact
for the Gaussian Gibbs measure of ridge regression (tested against it).

*ReLU student, finite* :math:`\beta`: :math:`\int Dz\,e^{-\beta\ell} = \Phi(-\omega/\sqrt\Delta)
e^{-\beta y^2/2} + (1+\beta\Delta)^{-1/2}e^{-\beta(y-\omega)^2/(2(1+\beta\Delta))}\Phi(k)`,
:math:`k = (\omega + \beta\Delta y)/\sqrt{\Delta(1+\beta\Delta)}`; the outer average is a
tensor quadrature (Gauss-Legendre in :math:`t` split at 0, Gauss-Hermite in
:math:`\xi, z_0`) of this smooth integrand.

*Zero temperature* (:math:`\beta\to\infty`, :math:`q\to Q`, :math:`x = \beta(Q-q)` fixed;
Laplace's method on the inner integral):

.. math::

    f(Q, T, x) = \frac{\zeta Q}2 - \frac{Q - T^2}{2x} + \alpha\,E\,M_x(y, \omega),\qquad
    M_x(y, \omega) = \min_u\Bigl[\frac{(u-\omega)^2}{2x} + \frac12(y - g(u))^2\Bigr],

:math:`\omega = Tt + \sigma z`, :math:`\sigma^2 = Q - T^2` (a Moreau envelope; the same as
Gordon's comparison). Let :math:`u^*` be the minimizer. By the envelope theorem
:math:`\partial_\omega M = (\omega - u^*)/x`, :math:`\partial_x M = -(u^*-\omega)^2/(2x^2)`,
and since :math:`M` is continuous the piecewise regions contribute no boundary terms.
Stationarity (:math:`\partial_Q, \partial_T, \partial_x`) gives

.. math::

    \zeta x = 1 - \alpha A,\quad A = \frac{E[(\omega - u^*)z]}{\sigma};\qquad
    T = \alpha\bigl(E[(u^*-\omega)t] + T A\bigr);\qquad
    \sigma^2 = \alpha\,E[(u^* - \omega)^2].

At the saddle :math:`f = \zeta Q/2 + \alpha\,e_t` with :math:`e_t = E[\frac12(y - g(u^*))^2]`,
the training energy per sample.

*Linear student*: :math:`u^* = (\omega + xy)/(1+x)`; with :math:`\zeta = 0`, :math:`\alpha>1`:
:math:`x = 1/(\alpha-1)`, :math:`T = 1`, :math:`\epsilon = S/(\alpha-1)` (min-norm).

*ReLU student*: branch :math:`u\le0`: :math:`u^* = \min(\omega, 0)`, cost
:math:`y^2/2 + \max(\omega,0)^2/(2x)`; branch :math:`u>0`: :math:`u^* = (\omega+xy)/(1+x)`,
cost :math:`(y-\omega)^2/(2(1+x))`, valid if :math:`\omega + xy > 0`. The positive branch
wins iff :math:`y > h(\omega)`, :math:`h(\omega) = -\omega/x` (:math:`\omega > 0`),
:math:`-\omega/c` (:math:`\omega\le 0`), :math:`c = \sqrt{1+x} - 1`: three wedges of the
:math:`(\omega, y)` plane with apex at 0, on each of which every quantity above is a
quadratic form. For a linear teacher :math:`(\omega, y)` is a centred Gaussian pair and
each wedge integral is exact: :math:`E[v^\top K v\,1_W] = \frac1\pi\int_W
e_\varphi^\top L^\top K L\,e_\varphi\,d\varphi` in whitened polar coordinates
(:math:`v = L\,(a,b)`). For a ReLU teacher :math:`\omega` is integrated analytically
(truncated-normal moments) and :math:`(t, \xi)` by Gauss-Legendre split at the kinks
:math:`t = 0`, :math:`y = 0`.

*The interpolating phase* (:math:`\zeta\to0^+`): the minimizers of the training loss form a
set, :math:`\zeta\to0^+` picks its minimum-norm element, and :math:`x\to\infty` with
:math:`\zeta x\to\kappa = 1 - \alpha A_\infty > 0`. The :math:`T` and :math:`\sigma^2`
equations stay finite with :math:`u^*_\infty` = the projection of :math:`\omega` on
:math:`\arg\min_u\ell(y, g(u))` (linear: :math:`y`; ReLU: :math:`y` if :math:`y > 0`, else
:math:`\min(\omega, 0)`). Linear student: :math:`\alpha < 1`,
:math:`\epsilon = 1 - \alpha + \alpha S/(1-\alpha)`, diverging at :math:`\alpha = 1`. ReLU
student: the minimizers are the polyhedron :math:`\{w\cdot x_p = y_p\ (y_p>0),\
w\cdot x_p\le0\ (y_p\le0)\}` -- not unique -- while :math:`\kappa > 0`, i.e. up to
:math:`\alpha_c(S)` (1.465 at :math:`S = 1/4`; 2 at :math:`S = 0`, where the teacher is
recovered, ``phase="recovered"``). At :math:`\alpha_c` the min-norm interpolator's error
has a finite peak with an infinite left slope (3.45 at :math:`S = 1/4`; it grows quickly
with :math:`S`); beyond it the global minimizer is unique (finite :math:`x`) and
:math:`\epsilon` decreases (1.24 at :math:`\alpha = 2`, 0.61 at 4). There is no divergence
at :math:`\alpha = 2`. The landscape is non-convex (a positive-label pattern can be dead),
with many near-degenerate local minima; the saddle point describes the global minimum
(finite-N basin hopping converges to it, validation L-F1b).

Luo et al.'s eq. (25), :math:`\epsilon = 1 - \alpha/4 + \alpha S/(2(2-\alpha))` (their
eqs. 22-23 at :math:`a = 1`: :math:`Q = \alpha/2 + \alpha S/(2-\alpha)`,
:math:`T = \alpha/2`), is *exactly* this saddle point with the cost of region 0 dropped
(:math:`\max(\omega,0)^2/(2x)`, the price of holding :math:`w\cdot x_p\le0` on the
negative-label patterns; their Prop. 5 replaces that integral by its maximum). It equals
:math:`(1 + \epsilon^{\rm lin}_{\min}(\alpha/2))/2`, the min-norm *linear* fit of the
positive-label half alone. Finite-N min-norm interpolators (a convex QP) agree with the
full saddle point and reject eq. (25) (e.g. :math:`S = 0`, :math:`\alpha = 1`: 0.698 vs
0.75; validation check L-F1b; eq. 25 is
:func:`perceptron_theory.theory.generalization.relu_exhaustive`).

*With gamma decay* (:math:`\zeta > 0`, open in Luo et al. Sec. 4.1) the peak is gone:
at :math:`S = 1/4`, :math:`\zeta = 1/32` leaves a shoulder near :math:`\alpha_c`
(:math:`\epsilon` = 0.811, 0.785, 0.765, 0.662 at :math:`\alpha` = 1, 1.5, 2, 3) and
:math:`\zeta = 1/4` a monotone curve (0.798, 0.729, 0.679, 0.616). The optimal decay of the
ReLU student is below :math:`S` and rises towards it with :math:`\alpha` (0.15, 0.20, 0.23
at :math:`\alpha` = 1, 2, 4 for :math:`S = 1/4`), unlike the linear student's
:math:`\zeta^* = S`.

Numerics: the ReLU/linear-teacher expectations are exact (wedges, ~1e-15); a ReLU teacher
uses the quadrature engine (relative accuracy ~1e-8, checked against the wedges); finite
:math:`\beta` with a ReLU student uses composite Gauss-Legendre panels graded towards the
smoothed kinks (~1e-10) and needs a linear teacher. Roots: ``scipy.optimize.root`` (hybr)
in :math:`(T, \ln\sigma^2, \ln x)`, several cold starts, a damped fixed point
(:math:`x` from its scalar equation, then :math:`(T, \sigma^2)`), then continuation in
:math:`\alpha`; a root is accepted only if the residuals are below ``tol`` and the
Jacobian is well conditioned (a singular load, e.g. :math:`\alpha = 1` for the linear
student at :math:`\zeta = 0`, is reported with ``converged=False``). A solve takes about
2 ms (linear teacher, :math:`\beta = \infty`), 0.5 s (ReLU teacher or finite
:math:`\beta`).

Modules (everything public is re-exported here)
-----------------------------------------------
* :mod:`.expectations` -- the pattern averages: prox moments (:func:`prox_moments`) at zero
  temperature, the Gaussian integrals at finite :math:`\beta`, their quadrature rules;
* :mod:`.free_energy` -- :func:`free_energy`, :func:`stationarity` and the residuals the
  solver drives to zero;
* :mod:`.solver` -- :func:`solve`, :func:`learning_curve` and their result objects.

Examples
--------
>>> sol = solve(2.0, student="linear", noise=0.25)   # min-norm: S/(alpha - 1)
>>> round(sol.eps, 12)
0.25
>>> sol = solve(0.5, student="linear", noise=0.25)   # interpolating: 1 - a + a S/(1 - a)
>>> round(sol.eps, 12), sol.phase
(0.75, 'interpolating')
"""

from perceptron_theory.theory.replica.expectations import (
    STUDENTS,
    TEACHERS,
    ProxMoments,
    prox_moments,
)
from perceptron_theory.theory.replica.free_energy import free_energy, stationarity
from perceptron_theory.theory.replica.solver import (
    ReplicaCurve,
    ReplicaSolution,
    learning_curve,
    solve,
)

__all__ = [
    "STUDENTS",
    "TEACHERS",
    "ProxMoments",
    "ReplicaSolution",
    "ReplicaCurve",
    "solve",
    "learning_curve",
    "free_energy",
    "stationarity",
    "prox_moments",
]
