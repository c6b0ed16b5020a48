# Sourced by run_tests.sh (and to be used for scripts/refresh_notebooks.py): the same CPU
# kernels on every x86-64 host with AVX2, whether it has AVX-512 or not, and a fixed thread
# count, so that the training results nbval compares do not depend on which machine runs CI.
# On AVX-512 hosts this costs speed (measured on an AMD EPYC: a ResNet-18 48 px epoch 12 s ->
# 18 s); the main job and the studies do not pin.
export ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2
# numpy's OpenBLAS also picks kernels per CPU (Haswell = AVX2, any vendor)
export OPENBLAS_CORETYPE=Haswell
export OMP_NUM_THREADS=2 MKL_NUM_THREADS=2
