// System-library shim: OpenBLAS's CBLAS interface and LAPACKE (Debian: libopenblas-dev, liblapacke-dev).
#include <cblas.h>
#include <lapacke.h>

// Two functions of OpenBLAS's threaded builds that its headers do not declare: re-reading the OPENBLAS_*
// environment variables, and stopping the worker threads (the next threaded call starts them again with what was
// read). Lancet uses them once, to give idle workers a short spin (LancetTensor's `configureBLASThreads`).
void openblas_read_env(void);
int blas_thread_shutdown_(void);
