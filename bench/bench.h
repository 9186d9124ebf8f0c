/* bench — the benchmark harness: --sweep (training runs, CSV, plots), --gemm (kernels
 * against the reference and, where installed, OpenBLAS and BLIS), --peers. */
#ifndef SN_BENCH_H
#define SN_BENCH_H

#include <stdio.h>

int bench_gemm_main(int argc, char **argv);
int bench_sweep_main(int argc, char **argv);
int bench_peers_main(int argc, char **argv);

/* '#' lines for the top of a CSV: commit, compiler, flags, CPU, ISA, threads, date. */
void bench_write_provenance(FILE *f, const char *what);

#endif
