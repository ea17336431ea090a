"""What a function compiled for training keeps for its backward: the tensors its forward graph hands the backward,
as Inductor's partitioner (`min_cut_rematerialization_partition`) splits the joint graph; no code generated."""
import torch
from torch._functorch.aot_autograd import aot_module_simplified, make_boxed_func
from torch._functorch.partitioners import min_cut_rematerialization_partition


def compiled_saves(fn, *inputs, outputs: int = 1):
    """(fn(*inputs) compiled and run, the shapes of the tensors its forward saves that are not its inputs); fn
    returns `outputs` tensors."""
    shapes = []

    def forward_compiler(gm, example_inputs):
        returned = next(n for n in gm.graph.nodes if n.op == "output").args[0]
        shapes.extend(tuple(node.meta["val"].shape) for node in returned[outputs:]
                      if node.op != "placeholder" and isinstance(node.meta.get("val"), torch.Tensor))
        return make_boxed_func(gm)

    def backend(gm, example_inputs):
        return aot_module_simplified(gm, example_inputs, fw_compiler=forward_compiler,
                                     bw_compiler=lambda g, _: make_boxed_func(g),
                                     partition_fn=min_cut_rematerialization_partition)

    torch._dynamo.reset()
    return torch.compile(fn, backend=backend, dynamic=False)(*inputs), shapes
