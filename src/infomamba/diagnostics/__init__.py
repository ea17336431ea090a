"""The paper's consistency-boundary diagnostics (§3.2 ε_exp and H1-H3, §5.5 inconsistency diagnostics).

- `exponential_fit`: ε_exp, the normalised least-squares residual of an m-term exponential fit of an
  attention kernel (matrix pencil + least squares);
- `attention_kernels`: the kernels w_t(ℓ) and the diagonal mass of every softmax-attention layer,
  captured with hooks on real inputs;
- `ssm_spectrum`: the spectral radius of the SSM transitions exp(dt A) over the data (H2);
- `agreement`: both right / both wrong / disagree fractions of two models on the same samples;
- `report`: JSON, markdown and PNG plots.

`infomamba diagnose` (`infomamba.diagnose`) runs them on a trained checkpoint.
"""
from .agreement import agreement
from .attention_kernels import AttentionRecorder
from .exponential_fit import DEFAULT_ORDERS, epsilon_exp, exponential_fits, fit_exponentials
from .ssm_spectrum import SSMSpectrumRecorder

__all__ = ["AttentionRecorder", "DEFAULT_ORDERS", "SSMSpectrumRecorder", "agreement", "epsilon_exp",
           "exponential_fits", "fit_exponentials"]
