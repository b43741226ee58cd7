"""What the benchmarks say about the machine their numbers came from."""
import platform

# the vector extensions that pick the kernels (oneDNN's, ours, PyTorch's)
ISA = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")


def cpu_name():
    """Model name, family/model and the widest vector extensions, e.g.
    "AMD EPYC (family 25 model 1; avx2)": the model name alone ("AMD EPYC")
    did not tell a Zen 3 from a Zen 4."""
    fields = {}
    with open("/proc/cpuinfo") as f:
        for line in f:
            if not line.strip():
                break           # the first processor's block
            k, _, v = line.partition(":")
            fields[k.strip()] = v.strip()
    name = fields.get("model name") or platform.processor()
    flags = fields.get("flags", "").split()
    isa = ", ".join(i for i in ISA if i in flags) or "no AVX2"
    if "cpu family" in fields:
        return f"{name} (family {fields['cpu family']} model {fields.get('model', '?')}; {isa})"
    return f"{name} ({isa})"
