"""Eq. 8's references (`ops/hash_bucket/reference.py`): C(b) holds the concepts of highest cosine to each bucket,
the bucket sample is F.gumbel_softmax(hard=True) given the same draw, and the MI-hash term is a cosine
log-likelihood of the token's bucket."""
import torch
import torch.nn.functional as F

from infomamba.ops.hash_bucket import bucket_members_reference, bucket_nll_reference, gumbel_bucket_reference


def test_the_sample_is_torch_gumbel_softmax_given_the_same_draw():
    logits = torch.randn(4, 9, 16, requires_grad=True)
    weights = torch.randn(4, 9, 16)
    torch.manual_seed(3)
    want = F.gumbel_softmax(logits, tau=1.0, hard=True)
    torch.manual_seed(3)
    got = gumbel_bucket_reference(logits, torch.empty_like(logits).exponential_())
    assert torch.equal(got, want)
    assert torch.equal(got.sum(-1), torch.ones(4, 9)) and torch.equal((got == 1).sum(-1), torch.ones(4, 9).long())
    grad_got, = torch.autograd.grad((got * weights).sum(), logits)
    grad_want, = torch.autograd.grad((want * weights).sum(), logits)
    torch.testing.assert_close(grad_got, grad_want, rtol=0, atol=0)


def test_the_term_is_the_negative_log_likelihood_of_the_chosen_bucket_under_a_cosine_softmax():
    u = torch.randn(2, 5, 8)
    dirs = F.normalize(torch.randn(6, 8), dim=-1)
    b = F.one_hot(torch.randint(0, 6, (2, 5)), 6).float()
    cos = torch.einsum("bld,jd->blj", u / u.norm(dim=-1, keepdim=True), dirs)
    want = -torch.log(torch.exp(cos / 0.1) / torch.exp(cos / 0.1).sum(-1, keepdim=True))[b.bool()].view(2, 5)
    got = bucket_nll_reference(u, b, dirs, 0.1)
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(bucket_nll_reference(7.0 * u, b, dirs, 0.1), got)  # scale-free in u
    zero = torch.zeros(1, 8, requires_grad=True)  # |u| = 0: clamped as F.normalize, a finite gradient
    bucket_nll_reference(zero, b[0, :1], dirs, 0.1).sum().backward()
    assert torch.isfinite(zero.grad).all()


def test_concepts_join_the_bucket_of_highest_cosine_whatever_the_norms():
    g = torch.Generator().manual_seed(0)
    centers = torch.randn(40, 8, generator=g) * (torch.rand(40, 1, generator=g) * 10 + 0.1)
    dirs = F.normalize(torch.randn(4, 8, generator=g), dim=-1)
    nearest = F.one_hot((F.normalize(centers, dim=-1) @ dirs.t()).argmax(-1), 4).t().float()
    expected = torch.where(nearest.sum(-1, keepdim=True) == 0, torch.ones_like(nearest), nearest)
    assert torch.equal(bucket_members_reference(centers, dirs), expected)
    assert 0 < expected.sum() < 4 * 40  # some bucket is not empty, so some column is a true one-hot


def test_empty_bucket_falls_back_to_all_concepts():
    g = torch.Generator().manual_seed(0)
    direction = F.normalize(torch.randn(8, generator=g), dim=0)
    dirs = torch.stack([direction, -direction, F.normalize(torch.ones(8), dim=0)])
    centers = direction + 0.01 * torch.randn(5, 8, generator=g)  # all nearest to bucket 0
    member = bucket_members_reference(centers, dirs)
    assert member[0].sum() == 5
    assert member[1].sum() == 5 and member[2].sum() == 5

