/* MPI jobs for the programs: see job.h. The library never sees MPI: train --shards hands
 * it cli_job_exchange, bench --sweep gathers its parts' files with cli_job_send/recv. */
#include "job.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef SN_HAVE_MPI
#include <mpi.h>
#endif

int cli_job_launched_size(void)
{
    /* The job's size as each launcher says it: Open MPI's mpiexec; MPICH's Hydra, Intel MPI
     * and Slurm's PMI-2 (PMI_SIZE); MVAPICH; Slurm's srun --mpi=pmix (PMIx names the rank,
     * Slurm the task count). */
    static const char *const vars[] = { "OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MV2_COMM_WORLD_SIZE", NULL };
    for (int i = 0; vars[i]; i++) {
        const char *v = getenv(vars[i]);
        if (v && *v) return atoi(v);
    }
    const char *pmix = getenv("PMIX_RANK"), *tasks = getenv("SLURM_NTASKS");
    return pmix && *pmix && tasks && *tasks ? atoi(tasks) : 0;
}

int cli_job_init(cli_job *job, int *argc, char ***argv, const char *prog)
{
    memset(job, 0, sizeof *job);
    job->size = 1;
    const int launched = cli_job_launched_size();
    if (launched <= 1) return 0;
#ifdef SN_HAVE_MPI
    int provided;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
        fprintf(stderr, "%s: started by an MPI launcher as one of %d processes, but MPI could not be initialised\n",
                prog, launched);
        return 2;
    }
    job->mpi = 1;
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &job->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &job->size);
    if (job->size != launched) {
        fprintf(stderr, "%s: the launcher started %d processes but MPI says this is %d of %d: the launcher belongs "
                        "to another MPI than the one %s was built with (each copy would do all the work alone); use "
                        "that MPI's mpiexec\n", prog, launched, job->rank, job->size, prog);
        cli_job_finish(job);
        return 2;
    }
    return 0;
#else
    (void)argc, (void)argv;
    fprintf(stderr, "%s: started by an MPI launcher as one of %d processes, but built without MPI (-Dmpi=disabled, "
                    "or no MPI found at setup): the %d copies would each do all the work. Rebuild with MPI "
                    "(apt-get install libopenmpi-dev) or run one process\n", prog, launched, launched);
    return 2;
#endif
}

void cli_job_finish(cli_job *job)
{
#ifdef SN_HAVE_MPI
    if (job->mpi) MPI_Finalize();
#endif
    job->mpi = 0;
}

#ifdef SN_HAVE_MPI
/* MPI counts are ints: large buffers go in pieces of at most 1 GiB. */
enum { PIECE = 1 << 30 };
#endif

int cli_job_exchange(void *user, int partner, const void *send, void *recv, size_t bytes)
{
#ifdef SN_HAVE_MPI
    (void)user;
    for (size_t off = 0; off < bytes; off += PIECE) {
        const int n = (int)(bytes - off < PIECE ? bytes - off : PIECE);
        if (MPI_Sendrecv(send ? (const char *)send + off : NULL, n, MPI_BYTE, partner, 7, (char *)recv + off, n,
                         MPI_BYTE, partner, 7, MPI_COMM_WORLD, MPI_STATUS_IGNORE) != MPI_SUCCESS)
            return -1;
    }
    return 0;
#else
    (void)user, (void)partner, (void)send, (void)recv, (void)bytes;
    return -1;
#endif
}

void cli_job_barrier(cli_job *job)
{
#ifdef SN_HAVE_MPI
    if (job->mpi) MPI_Barrier(MPI_COMM_WORLD);
#else
    (void)job;
#endif
}

int cli_job_send(cli_job *job, int to, const void *data, size_t len)
{
#ifdef SN_HAVE_MPI
    if (!job->mpi) return -1;
    unsigned long long n = len;
    if (MPI_Send(&n, 1, MPI_UNSIGNED_LONG_LONG, to, 11, MPI_COMM_WORLD) != MPI_SUCCESS) return -1;
    for (size_t off = 0; off < len; off += PIECE) {
        const int k = (int)(len - off < PIECE ? len - off : PIECE);
        if (MPI_Send((const char *)data + off, k, MPI_BYTE, to, 12, MPI_COMM_WORLD) != MPI_SUCCESS) return -1;
    }
    return 0;
#else
    (void)job, (void)to, (void)data, (void)len;
    return -1;
#endif
}

int cli_job_recv(cli_job *job, int from, char **data, size_t *len)
{
    *data = NULL, *len = 0;
#ifdef SN_HAVE_MPI
    if (!job->mpi) return -1;
    unsigned long long n;
    if (MPI_Recv(&n, 1, MPI_UNSIGNED_LONG_LONG, from, 11, MPI_COMM_WORLD, MPI_STATUS_IGNORE) != MPI_SUCCESS) return -1;
    char *buf = malloc((size_t)n + 1);
    if (!buf) return -1;
    for (size_t off = 0; off < n; off += PIECE) {
        const int k = (int)(n - off < PIECE ? n - off : PIECE);
        if (MPI_Recv(buf + off, k, MPI_BYTE, from, 12, MPI_COMM_WORLD, MPI_STATUS_IGNORE) != MPI_SUCCESS) {
            free(buf);
            return -1;
        }
    }
    buf[n] = 0;
    *data = buf, *len = (size_t)n;
    return 0;
#else
    (void)job, (void)from;
    return -1;
#endif
}

int cli_job_sum_int(cli_job *job, int v)
{
#ifdef SN_HAVE_MPI
    int sum = v;
    if (job->mpi) MPI_Allreduce(&v, &sum, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    return sum;
#else
    (void)job;
    return v;
#endif
}
