"""nn.Modules and helpers shared by mixers, one concept a file: `ssm` (the selective SSM stream),
`concepts` (the concept filter, Eq. 7-10), `attention` (softmax self-attention), `grid` (grid shapes,
scan orders, the grid conv), `positions` (padding-invariant token positions), `pooling` (masked
means). They import `infomamba.ops` and each other, never a mixer."""
