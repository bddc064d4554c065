"""The CPU description that benchmarks and model cards carry."""
from emorec_ros.cpu import cpu_flags, describe_cpu

AVX512 = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 9R14 96-Core Processor
flags\t\t: fpu sse avx2 fma avx512f avx512_vnni avx512_bf16

processor\t: 1
model name\t: AMD EPYC 9R14 96-Core Processor
flags\t\t: fpu sse avx2 fma avx512f avx512_vnni avx512_bf16
"""
AVX2 = """processor\t: 0
model name\t: AMD EPYC
flags\t\t: fpu sse avx2 fma
"""


def test_the_widest_vector_instructions_are_named() -> None:
    assert describe_cpu(AVX512).startswith('AMD EPYC 9R14 96-Core Processor, ')
    assert describe_cpu(AVX512).endswith(' cores, AVX-512 with VNNI')
    assert describe_cpu(AVX2).endswith(' cores, AVX2')
    assert describe_cpu('').startswith('unknown CPU, ')
    assert cpu_flags(AVX512) >= {'avx512_bf16', 'avx2'} and 'avx512f' not in cpu_flags(AVX2)


def test_this_machine_is_described() -> None:
    assert ' cores, ' in describe_cpu()
