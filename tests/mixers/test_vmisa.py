"""VMI-SA: Eq. 10 (bidirectional) and Eq. 9 (causal) against a literal reading with the matrix M of Eq. 8."""
import torch

from infomamba.mixers import build_mixer

DIM, L = 8, 21  # inner width D = 16 < L, so M has all-ones rows below the triangle


def _parts(m, x):
    with torch.no_grad():
        m.alpha.normal_()
        m.beta.normal_()
    c = m.conv(x, None, (1, x.shape[1]))
    qv = (m.w1(c) * m.w2(c))[0]
    M = torch.ones(x.shape[1], qv.shape[1]).tril()                     # Eq. 8: row i keeps i channels
    return qv, M, m.alpha[: x.shape[1]], m.beta[: x.shape[1]]


def test_triangular_mask():
    qv, M, _, _ = _parts(build_mixer("vmisa", DIM), torch.randn(1, L, DIM))
    assert M[0].tolist() == [1.0] + [0.0] * (qv.shape[1] - 1)
    assert M[qv.shape[1] - 1:].eq(1).all()


def test_bidirectional_is_eq_10():
    torch.manual_seed(0)
    m = build_mixer("vmisa", DIM, conv_size=3)
    x = torch.randn(1, L, DIM)
    qv, M, alpha, beta = _parts(m, x)
    context = sum(alpha[i] * M[i] * qv[i] for i in range(L))
    expected = m.out_proj(context + beta[:, None] * qv)
    torch.testing.assert_close(m(x)[0][0], expected)


def test_causal_is_the_recurrence_of_eq_9():
    torch.manual_seed(0)
    m = build_mixer("vmisa", DIM, causal=True, conv_size=3)
    x = torch.randn(1, L, DIM)
    qv, M, alpha, beta = _parts(m, x)
    h = torch.zeros(qv.shape[1])
    ys = []
    for i in range(L):
        h = h + alpha[i] * qv[i]
        ys.append(M[i] * h + beta[i] * qv[i])
    torch.testing.assert_close(m(x)[0][0], m.out_proj(torch.stack(ys)))
