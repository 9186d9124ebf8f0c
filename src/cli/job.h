/* job.c: the programs as processes of a job started by an MPI launcher (mpiexec, srun).
 *
 * A program calls cli_job_init first. Not started by a launcher (or started as 1 of 1):
 * rank 0 of 1, and nothing else changes, with or without MPI in the build. Started as one
 * of N > 1: with MPI, MPI is initialised (one thread calls it: the OpenMP teams never do)
 * and rank/size come from it; a launcher that says N while the library says 1 (a
 * launcher of another MPI than the one the program was built with: N copies that would
 * each do all the work) is refused, as is a build without MPI. */
#ifndef SN_CLI_JOB_H
#define SN_CLI_JOB_H

#include <stddef.h>

typedef struct cli_job {
    int rank, size;
    int mpi; /* MPI initialised: cli_job_finish finalises it */
} cli_job;

/* 0 to go on, else the exit code (2, with the message printed). */
int cli_job_init(cli_job *job, int *argc, char ***argv, const char *prog);
void cli_job_finish(cli_job *job);
/* The size the launcher's environment announces (Open MPI, MPICH/Hydra, Intel MPI,
 * MVAPICH, Slurm's PMI-2 and PMIx); 0 if none. */
int cli_job_launched_size(void);

/* sn_exchange_fn (shard.h) over MPI: user is the cli_job. */
int cli_job_exchange(void *user, int partner, const void *send, void *recv, size_t bytes);
void cli_job_barrier(cli_job *job);
/* Point to point, for gathering files at rank 0: a length, then the bytes. 0 on success;
 * *data is malloc'd. */
int cli_job_send(cli_job *job, int to, const void *data, size_t len);
int cli_job_recv(cli_job *job, int from, char **data, size_t *len);
/* Every rank's int, at every rank (e.g. "did yours fail?"): the sum. */
int cli_job_sum_int(cli_job *job, int v);

#endif
